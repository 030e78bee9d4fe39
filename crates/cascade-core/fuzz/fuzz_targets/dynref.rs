//! The dynamic-reference parser (`cascade_core::dynref`).
//!
//! Properties, beyond "never panics":
//! - every reference found spans text that opens with `{{resolve:secretsmanager:` and
//!   closes with `}}`; references come in order and do not overlap;
//! - what parses prints back (`Display`) and parses the same: one reference, the same
//!   fields;
//! - a reference to a secret (a name, or a whole ARN) pinned by Secret Cascade
//!   (`pinned_to`) parses back pinned to that version, with the same secret and key, and
//!   counts as pinned.
#![no_main]

use cascade_core::dynref::{PREFIX, find_all};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let found = find_all(text);
    let mut last_end = 0;
    for reference in &found {
        assert!(reference.start >= last_end, "references overlap or go back");
        assert!(reference.start < reference.end && reference.end <= text.len());
        let span = &text[reference.start..reference.end];
        assert!(span.starts_with(PREFIX) && span.ends_with("}}"), "{span:?}");
        last_end = reference.end;

        let printed = reference.to_string();
        let again = find_all(&printed);
        assert_eq!(
            again.len(),
            1,
            "{printed:?} holds {} references",
            again.len()
        );
        let again = &again[0];
        assert_eq!(
            (
                &again.secret_id,
                &again.json_key,
                &again.version_stage,
                &again.version_id
            ),
            (
                &reference.secret_id,
                &reference.json_key,
                &reference.version_stage,
                &reference.version_id
            ),
            "{span:?} printed as {printed:?}"
        );
        assert_eq!((again.start, again.end), (0, printed.len()));
        assert_eq!(again.to_string(), printed, "printing is not stable");

        // Pins are written for references to a secret of the batch: a name (no colon) or a
        // whole ARN (seven fields). A text that starts like an ARN but has fewer fields
        // names no secret, and its fields cannot be told from the ARN's.
        let id = &reference.secret_id;
        let names_a_secret = !id.contains(':') || id.split(':').count() == 7;
        for version in ["v2", "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"] {
            if !names_a_secret {
                break;
            }
            let pinned = reference.pinned_to(version);
            let back = find_all(&pinned);
            assert_eq!(back.len(), 1, "{pinned:?}");
            let back = &back[0];
            assert_eq!(back.version_id.as_deref(), Some(version), "{pinned:?}");
            assert_eq!(back.version_stage, None, "{pinned:?}");
            assert_eq!(
                (&back.secret_id, &back.json_key),
                (&reference.secret_id, &reference.json_key),
                "{pinned:?}"
            );
            assert!(back.is_pinned());
        }
    }
});
