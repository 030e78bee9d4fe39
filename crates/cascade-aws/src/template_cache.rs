//! Templates discovery has read, kept by stack id and last-updated time, so a second plan
//! over stacks that did not change reads almost nothing from CloudFormation.
//!
//! A stack's template changes only through an update, and every update (completed, failed
//! or rolled back) moves the stack's `LastUpdatedTime`; its id names one incarnation of the
//! stack. So the pair names exactly one template, and an entry never goes stale: it is
//! written once and only ever read. The cache is an optimisation of planning alone: the
//! refresh step reads the template from CloudFormation again before it changes anything
//! and refuses a stack whose template is not the one planned (`template_digest`).
//!
//! A cache that cannot be read or written never fails discovery: the template is read from
//! CloudFormation, and the failure is logged without the template.

use cascade_core::digest::sha256_hex;
use tracing::debug;

use crate::store::Store;

/// Where the entries are, under the store's root.
pub const PREFIX: &str = "template-cache/";

/// A cache of Original-stage templates in a [`Store`]: the application's bucket for the
/// Lambda functions, a private directory for the CLI.
#[derive(Debug, Clone)]
pub struct TemplateCache {
    store: Store,
}

impl TemplateCache {
    /// A cache kept in `store`, under [`PREFIX`].
    pub fn new(store: Store) -> Self {
        TemplateCache { store }
    }

    /// The CLI's cache directory: `$XDG_CACHE_HOME/secret-cascade/templates`, else
    /// `~/.cache/secret-cascade/templates`.
    pub fn default_dir() -> std::path::PathBuf {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache"))
            })
            .unwrap_or_else(|| std::path::PathBuf::from("."))
            .join("secret-cascade")
            .join("templates")
    }

    /// A cache in the directory `dir`, created readable by its owner only (templates can
    /// hold what their authors would not publish).
    pub fn in_directory(dir: std::path::PathBuf) -> std::io::Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(TemplateCache::new(Store::Local(dir)))
    }

    /// The key of a stack's template as of `updated` (its last-updated time, or its
    /// creation time when it was never updated).
    pub fn key(stack_id: &str, updated: &str) -> String {
        format!(
            "{PREFIX}{}.template",
            sha256_hex(format!("{stack_id}\n{updated}"))
        )
    }

    /// The template cached for this stack id and time, if any.
    pub async fn get(&self, stack_id: &str, updated: &str) -> Option<String> {
        let key = Self::key(stack_id, updated);
        match self.store.get(&key).await {
            Ok(Some(body)) => String::from_utf8(body).ok(),
            Ok(None) => None,
            Err(e) => {
                debug!(stack = %stack_id, "template cache not read: {e}");
                None
            }
        }
    }

    /// Keeps `template` for this stack id and time.
    pub async fn put(&self, stack_id: &str, updated: &str, template: &str) {
        let key = Self::key(stack_id, updated);
        if let Err(e) = self
            .store
            .put(&key, template.as_bytes().to_vec(), "text/plain")
            .await
        {
            debug!(stack = %stack_id, "template cache not written: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_one_incarnation_at_one_time() {
        let id = "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1";
        let key = TemplateCache::key(id, "2026-12-01T10:00:00Z");
        assert!(key.starts_with(PREFIX) && key.ends_with(".template"));
        assert_ne!(key, TemplateCache::key(id, "2026-12-01T10:00:01Z"));
        assert_ne!(
            key,
            TemplateCache::key(
                "arn:aws:cloudformation:us-east-1:123456789012:stack/app/2",
                "2026-12-01T10:00:00Z"
            )
        );
        // The key tells nothing of the stack.
        assert!(!key.contains("app"));
    }

    #[tokio::test]
    async fn a_directory_cache_gives_back_what_it_kept_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("cascade-cache-{}", std::process::id()));
        let cache = TemplateCache::in_directory(dir.clone()).unwrap();
        assert_eq!(cache.get("stack-1", "t1").await, None);
        cache.put("stack-1", "t1", "Resources: {}\n").await;
        assert_eq!(
            cache.get("stack-1", "t1").await.as_deref(),
            Some("Resources: {}\n")
        );
        assert_eq!(cache.get("stack-1", "t2").await, None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_unusable_cache_is_a_miss_not_an_error() {
        // A file where the cache's directory should be: nothing can be read or written.
        let file = std::env::temp_dir().join(format!("cascade-cache-file-{}", std::process::id()));
        std::fs::write(&file, "not a directory").unwrap();
        let cache = TemplateCache::new(Store::Local(file.clone()));
        cache.put("stack-1", "t1", "Resources: {}\n").await;
        assert_eq!(cache.get("stack-1", "t1").await, None);
        std::fs::remove_file(file).unwrap();
    }
}
