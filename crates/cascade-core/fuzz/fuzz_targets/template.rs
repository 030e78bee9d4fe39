//! The template reader (`cascade_core::template`), JSON and YAML with short-form tags.
//!
//! Properties, beyond "never panics":
//! - a template that reads prints (as the JSON the project writes) and reads back to the
//!   same value, keys in the same order (the round trip catches a reader that produces a
//!   value it cannot read again: floats that move, nesting past the JSON reader's limit);
//! - printing is stable: the value read back prints to the same text;
//! - an error has a position inside the text (1-based line and column) and a reason.
#![no_main]

use cascade_core::template::{read_template, to_json_pretty};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match read_template(text) {
        Ok(value) => {
            assert!(
                value.is_object(),
                "the top level of a template is a mapping"
            );
            let printed = to_json_pretty(&value);
            let again = read_template(&printed)
                .unwrap_or_else(|e| panic!("the printed template does not read back: {e}"));
            assert_eq!(
                again, value,
                "the printed template reads back to another value"
            );
            // Same keys in the same order: the Map comparison above ignores order.
            assert_eq!(to_json_pretty(&again), printed, "printing is not stable");
            let compact = serde_json::to_string(&value).expect("a Value always prints");
            assert_eq!(read_template(&compact).ok().as_ref(), Some(&value));
        }
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1, "position from 1: {e}");
            assert!(
                e.line
                    <= text
                        .split(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
                        .count()
                        + 1,
                "line past the end of the text: {e}"
            );
            assert!(!e.message.is_empty(), "an error says why");
        }
    }
});
