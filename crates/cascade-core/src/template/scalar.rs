//! What a YAML scalar means in a CloudFormation template.
//!
//! CloudFormation reads YAML 1.1, and the reference converter (cfn-flip, on PyYAML) resolves
//! plain scalars with YAML 1.1's implicit types. This module follows PyYAML's resolver
//! exactly (checked against cfn-flip 1.3.0 on some 20,000 generated scalars), except for
//! full timestamps and infinities, where cfn-flip's output is not the template's text or
//! not JSON (see below):
//!
//! | plain scalar | result | why |
//! |---|---|---|
//! | `~`, `null`, `Null`, `NULL`, empty | `null` | YAML 1.1 null |
//! | `yes`/`no`/`on`/`off`/`true`/`false` (lower, Capitalised, UPPER) | bool | YAML 1.1 bool; the corpus has `Default: Yes` → `true` |
//! | `y`, `n`, `tRUE` | string | not YAML 1.1 bools (PyYAML agrees) |
//! | `1_000`, `0777`, `0x1F`, `0b101`, `+5`, `1:30` | int 1000, 511, 31, 5, 5, 90 | YAML 1.1 int: `_` separators, octal with a leading `0`, hex, binary, base 60 |
//! | `08`, `0o17`, `01:30` | string | match no YAML 1.1 int form |
//! | `1.0`, `.5`, `1.`, `1.5e+3`, `1:30.5` | float 1.0, 0.5, 1.0, 1500.0, 90.5 | YAML 1.1 float (a dot is required) |
//! | `1e3`, `1.0e3`, `-.5` | string | YAML 1.1 floats need a dot, a signed exponent, and a digit before a signed dot |
//! | `2010-09-09`, `2001-12-14T21:59:43Z` | string, as written | see below |
//! | `.inf`, `.nan`, `1.0e+999` | string, as written | see below |
//! | an int beyond 64 bits | float | see below |
//!
//! - Timestamps: PyYAML makes `date`/`datetime` objects and cfn-flip writes them with
//!   `isoformat()`. For a date (`AWSTemplateFormatVersion: 2010-09-09`, the only form in the
//!   corpus) that is the text itself. A full timestamp would be reformatted by cfn-flip
//!   (`…43.10-05:00` → `…43.100000-05:00`); we keep the text as written, which is what
//!   CloudFormation (no timestamp type) sees.
//! - Infinities and NaN: cfn-flip writes `Infinity`/`NaN`, which is not JSON; we keep the
//!   text as a string.
//! - Integers beyond `i64`/`u64`: cfn-flip writes the exact digits, which `serde_json`
//!   (without `arbitrary_precision`) reads back as the nearest `f64`; we produce that same
//!   `f64`, so the YAML and JSON forms of one template read the same.

use serde_json::{Number, Value};

/// Resolves a plain (unquoted, untagged) scalar as YAML 1.1 does.
pub(crate) fn resolve_plain(text: &str) -> Value {
    if is_null(text) {
        Value::Null
    } else if let Some(b) = parse_bool(text) {
        Value::Bool(b)
    } else if let Some(n) = parse_int(text) {
        Value::Number(n)
    } else if let Some(n) = parse_float(text) {
        Value::Number(n)
    } else {
        Value::String(text.to_owned())
    }
}

/// `~`, `null`, `Null`, `NULL` or nothing at all.
pub(crate) fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// YAML 1.1 booleans, in the three spellings PyYAML accepts.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// A YAML 1.1 integer: decimal, `0b` binary, `0x` hex, `0` octal or `:` base 60, with `_`
/// separators and an optional sign.
pub(crate) fn parse_int(text: &str) -> Option<Number> {
    let (negative, body) = split_sign(text);
    let (radix, digits) = if let Some(bin) = body.strip_prefix("0b") {
        (2, bin)
    } else if let Some(hex) = body.strip_prefix("0x") {
        (16, hex)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, body)
    } else if body.contains(':') {
        return parse_sexagesimal_int(negative, body);
    } else if body == "0" || body.starts_with(|c: char| matches!(c, '1'..='9')) {
        (10, body)
    } else {
        return None;
    };
    if !digits.chars().all(|c| c == '_' || c.is_digit(radix)) {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        // `0b_` and `0x_` match YAML 1.1's pattern but have no digits (PyYAML fails on them).
        return None;
    }
    Some(match u128::from_str_radix(&digits, radix) {
        Ok(magnitude) => int_number(negative, magnitude),
        // Beyond 128 bits: the nearest f64 (a decimal string parses correctly rounded).
        Err(_) => float_number(signed(negative, big_to_f64(&digits, radix)))?,
    })
}

/// A YAML 1.1 float: needs a dot (`1.0`, `1.`, `.5`, `1.5e+3`, `1:30.5`).
pub(crate) fn parse_float(text: &str) -> Option<Number> {
    let (negative, body) = split_sign(text);
    if body.starts_with('.') && text.len() != body.len() {
        // `\.[0-9]…` has no sign in YAML 1.1's pattern: `-.5` is a string.
        return None;
    }
    let value = if body.contains(':') {
        sexagesimal_float(body)?
    } else {
        decimal_float(body)?
    };
    float_number(signed(negative, value))
}

/// `[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` or `\.[0-9][0-9_]*([eE][-+][0-9]+)?`.
fn decimal_float(body: &str) -> Option<f64> {
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.')?;
    let whole_ok = whole.is_empty() || starts_with_digit(whole) && is_digits_or_underscores(whole);
    let fraction_ok = if whole.is_empty() {
        starts_with_digit(fraction) && is_digits_or_underscores(fraction)
    } else {
        is_digits_or_underscores(fraction)
    };
    let exponent_ok = exponent.is_none_or(|e| {
        e.strip_prefix(['+', '-'])
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    });
    if !(whole_ok && fraction_ok && exponent_ok) {
        return None;
    }
    body.replace('_', "").parse().ok()
}

/// `[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`: base 60 with a fraction on the last part.
fn sexagesimal_float(body: &str) -> Option<f64> {
    let mut parts: Vec<&str> = body.split(':').collect();
    let last = parts.pop()?;
    let (last_whole, last_fraction) = last.split_once('.')?;
    if !is_base60_digit(last_whole) || !is_digits_or_underscores(last_fraction) {
        return None;
    }
    let first = parts.first()?;
    if !(starts_with_digit(first) && is_digits_or_underscores(first)) {
        return None;
    }
    if !parts[1..].iter().all(|p| is_base60_digit(p)) {
        return None;
    }
    let mut value = 0.0_f64;
    for part in parts {
        value = value * 60.0 + part.replace('_', "").parse::<f64>().ok()?;
    }
    Some(value * 60.0 + last.replace('_', "").parse::<f64>().ok()?)
}

/// `[1-9][0-9_]*(:[0-5]?[0-9])+`: base 60 (`1:30` is 90).
fn parse_sexagesimal_int(negative: bool, body: &str) -> Option<Number> {
    let mut parts = body.split(':');
    let first = parts.next()?;
    if !(first.starts_with(|c: char| matches!(c, '1'..='9')) && is_digits_or_underscores(first)) {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() || !rest.iter().all(|p| is_base60_digit(p)) {
        return None;
    }
    let first_digits: String = first.chars().filter(|&c| c != '_').collect();
    let mut exact = first_digits.parse::<u128>().ok();
    let mut approx = first_digits.parse::<f64>().ok()?;
    for part in rest {
        let digit: u8 = part.parse().ok()?;
        exact = exact
            .and_then(|v| v.checked_mul(60))
            .and_then(|v| v.checked_add(u128::from(digit)));
        approx = approx * 60.0 + f64::from(digit);
    }
    match exact {
        Some(magnitude) => Some(int_number(negative, magnitude)),
        None => float_number(signed(negative, approx)),
    }
}

/// An integer as a JSON number: `i64`/`u64` when it fits, else the nearest `f64`.
fn int_number(negative: bool, magnitude: u128) -> Number {
    if negative {
        if let Some(v) = i128::try_from(magnitude)
            .ok()
            .and_then(|m| i64::try_from(-m).ok())
        {
            return Number::from(v);
        }
    } else if let Ok(v) = u64::try_from(magnitude) {
        return Number::from(v);
    }
    // Precision loss is the point here: this is what serde_json reads for such digits.
    #[allow(clippy::cast_precision_loss)]
    let approx = magnitude as f64;
    Number::from_f64(signed(negative, approx)).unwrap_or_else(|| Number::from(0))
}

/// A finite float as a JSON number; `None` for infinities and NaN (JSON has none).
fn float_number(value: f64) -> Option<Number> {
    Number::from_f64(value)
}

/// The nearest `f64` of a digit string too long for `u128`.
fn big_to_f64(digits: &str, radix: u32) -> f64 {
    if radix == 10 {
        return digits.parse().unwrap_or(f64::INFINITY);
    }
    digits.chars().fold(0.0, |acc, c| {
        acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
    })
}

fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

fn signed(negative: bool, value: f64) -> f64 {
    if negative { -value } else { value }
}

fn starts_with_digit(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
}

fn is_digits_or_underscores(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

/// `[0-5]?[0-9]`.
fn is_base60_digit(s: &str) -> bool {
    match s.as_bytes() {
        [d] => d.is_ascii_digit(),
        [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(text: &str) -> Value {
        resolve_plain(text)
    }

    #[test]
    fn nulls() {
        for text in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(r(text), Value::Null, "{text:?}");
        }
        assert_eq!(r("nULL"), json!("nULL"));
    }

    #[test]
    fn yaml_1_1_booleans() {
        for text in [
            "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
        ] {
            assert_eq!(r(text), json!(true), "{text:?}");
        }
        for text in [
            "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
        ] {
            assert_eq!(r(text), json!(false), "{text:?}");
        }
        for text in ["y", "n", "Y", "N", "tRUE", "yES"] {
            assert_eq!(r(text), json!(text), "{text:?}");
        }
    }

    #[test]
    fn decimal_and_signed_integers() {
        assert_eq!(r("0"), json!(0));
        assert_eq!(r("-0"), json!(0));
        assert_eq!(r("+5"), json!(5));
        assert_eq!(r("-1"), json!(-1));
        assert_eq!(r("443"), json!(443));
        assert_eq!(r("1_000"), json!(1000));
        assert_eq!(r("123456789012"), json!(123_456_789_012_u64));
        assert_eq!(r("18446744073709551615"), json!(u64::MAX));
        assert_eq!(r("-9223372036854775808"), json!(i64::MIN));
    }

    #[test]
    fn octal_hex_binary_and_base_60_integers() {
        assert_eq!(r("0777"), json!(511));
        assert_eq!(r("00"), json!(0));
        assert_eq!(r("0_"), json!(0));
        assert_eq!(r("-017"), json!(-15));
        assert_eq!(r("0x1F"), json!(31));
        assert_eq!(r("-0x10"), json!(-16));
        assert_eq!(r("0x_1"), json!(1));
        assert_eq!(r("0b101"), json!(5));
        assert_eq!(r("1:30"), json!(90));
        assert_eq!(r("190:20:30"), json!(685_230));
        assert_eq!(r("-1:30"), json!(-90));
    }

    #[test]
    fn strings_that_look_like_integers() {
        for text in [
            "08", "0o17", "01:30", "1:70", "0b_", "0x_", "0x", "1__0x", "12a", "1 2",
        ] {
            assert_eq!(r(text), json!(text), "{text:?}");
        }
    }

    #[test]
    fn integers_beyond_64_bits_become_the_nearest_float() {
        assert_eq!(r("99999999999999999999"), json!(1e20));
        assert_eq!(
            r("-9223372036854775809"),
            json!(-9_223_372_036_854_775_809.0_f64)
        );
        assert_eq!(r(&"9".repeat(50)), json!(1e50));
        // The same as serde_json reads for the same digits.
        let from_json: Value = serde_json::from_str("99999999999999999999").unwrap();
        assert_eq!(r("99999999999999999999"), from_json);
    }

    #[test]
    fn floats_need_a_dot() {
        assert_eq!(r("1.0"), json!(1.0));
        assert_eq!(r("1."), json!(1.0));
        assert_eq!(r(".5"), json!(0.5));
        assert_eq!(r("-0.0"), json!(-0.0));
        assert_eq!(r("00.5"), json!(0.5));
        assert_eq!(r("1_2.5_0"), json!(12.5));
        assert_eq!(r("1.5e+3"), json!(1500.0));
        assert_eq!(r("1.e+2"), json!(100.0));
        assert_eq!(r("0.1e-2"), json!(0.001));
        assert_eq!(r("1:30.5"), json!(90.5));
        // A float, not an int: 1.0 and 1 are different JSON numbers to serde_json.
        assert_ne!(r("1.0"), json!(1));
    }

    #[test]
    fn strings_that_look_like_floats() {
        for text in [
            "1e3", "1.0e3", "1e+3", "-.5", "._5", ".e+1", ".", "1.2.3", "1.0e+",
        ] {
            assert_eq!(r(text), json!(text), "{text:?}");
        }
    }

    #[test]
    fn infinities_and_nan_stay_strings() {
        for text in [".inf", "-.inf", "+.INF", ".nan", ".NaN", "1.0e+999"] {
            assert_eq!(r(text), json!(text), "{text:?}");
        }
    }

    #[test]
    fn dates_and_timestamps_stay_as_written() {
        assert_eq!(r("2010-09-09"), json!("2010-09-09"));
        assert_eq!(r("2012-10-17"), json!("2012-10-17"));
        assert_eq!(
            r("2001-12-14t21:59:43.10-05:00"),
            json!("2001-12-14t21:59:43.10-05:00")
        );
    }
}
