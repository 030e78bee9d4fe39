//! Pins that age out, against the account: the versions of each changed secret that a
//! pinned reference names ([`crate::secrets::secret_versions`]), and what needs attention
//! ([`cascade_core::pins::attention`]).

use std::collections::BTreeMap;

use cascade_core::pins::{attention, secrets_to_check, unchecked_note};
use cascade_core::plan::Plan;
use tracing::{debug, warn};

use crate::clients::Clients;
use crate::secrets::secret_versions;

/// `plan` with what needs attention: the references pinned to a version of a changed
/// secret that Secrets Manager deprecated or deleted (`plan.attention`). Only the secrets
/// such a reference names are looked up (ListSecretVersionIds); a lookup that fails does
/// not lose the plan: its secret is left unchecked and `plan.notes` says so.
pub async fn with_attention(clients: &Clients, mut plan: Plan) -> Plan {
    let mut versions = BTreeMap::new();
    let mut notes = Vec::new();
    for secret in secrets_to_check(&plan) {
        match secret_versions(clients, &secret.arn).await {
            Ok(found) => {
                debug!(secret = %secret.name, versions = found.len(), "ListSecretVersionIds");
                versions.insert(secret.name.clone(), found);
            }
            Err(e) => {
                warn!(secret = %secret.name, error = %e, "the secret's versions could not be listed: its pins are not checked");
                notes.push(unchecked_note(&secret.name, &e.to_string()));
            }
        }
    }
    plan.attention = attention(&plan, &versions);
    plan.notes.extend(notes);
    plan
}
