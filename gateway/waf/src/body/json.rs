//! JSON bodies: flattened into `json.a.b` / `json.list.0` arguments (Coraza naming). A body
//! cut at the inspection limit is repaired first ([`parse_prefix`]), so that everything before
//! the cut is still inspected instead of the whole body failing to parse.

use super::Pairs;
use serde_json::Value;

/// Flattens a JSON document. Returns an error message on invalid JSON.
pub fn parse(body: &[u8]) -> Result<Pairs, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    walk("json", &v, &mut out);
    Ok(out)
}

/// Flattens the first part of a JSON document that was cut at the inspection limit: the document
/// is closed where it was cut (an unfinished string value ends there; otherwise the last
/// unfinished member is dropped) and the containers still open are closed. Only the value that
/// was being written at the cut is lost or shortened.
pub fn parse_prefix(body: &[u8]) -> Result<Pairs, String> {
    let candidates = repairs(body);
    for doc in &candidates {
        if let Ok(p) = parse(doc) {
            return Ok(p);
        }
    }
    parse(body)
}

/// Possible completions of a cut document, most complete first.
fn repairs(body: &[u8]) -> Vec<Vec<u8>> {
    let mut stack: Vec<u8> = Vec::new();
    let (mut in_string, mut escaped, mut string_is_value) = (false, false, false);
    let mut last_comma: Option<(usize, Vec<u8>)> = None;
    // The last structural byte outside strings, to tell keys from values.
    let mut prev = 0u8;
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    prev = b'"';
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string_is_value = stack.last() == Some(&b'[') || prev == b':';
            }
            b'{' | b'[' => stack.push(b),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => last_comma = Some((i, stack.clone())),
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            prev = b;
        }
    }
    let close = |doc: &mut Vec<u8>, open: &[u8]| doc.extend(open.iter().rev().map(|&c| if c == b'{' { b'}' } else { b']' }));
    let mut out = Vec::new();
    if !in_string {
        let mut doc = body.to_vec();
        close(&mut doc, &stack);
        out.push(doc);
    } else if string_is_value {
        // End the string where it was cut: drop a half escape sequence and a half UTF-8 character.
        let mut cut = body.len();
        if let Some(bs) = body[..cut].iter().rposition(|&c| c == b'\\') {
            if cut - bs < 6 {
                cut = bs;
            }
        }
        cut = whole_utf8(&body[..cut]);
        let mut doc = body[..cut].to_vec();
        doc.push(b'"');
        close(&mut doc, &stack);
        out.push(doc);
    }
    if let Some((at, open)) = last_comma {
        let mut doc = body[..at].to_vec();
        close(&mut doc, &open);
        out.push(doc);
    }
    out
}

/// The length of `b` without a UTF-8 character cut at its end.
fn whole_utf8(b: &[u8]) -> usize {
    let n = b.len();
    let mut i = n;
    while i > 0 && n - i < 3 && b[i - 1] & 0xC0 == 0x80 {
        i -= 1;
    }
    let Some(&lead) = i.checked_sub(1).and_then(|l| b.get(l)) else { return n };
    let need = match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => return n,
    };
    if n - (i - 1) < need {
        i - 1
    } else {
        n
    }
}

fn walk(prefix: &str, v: &Value, out: &mut Pairs) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                walk(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(&format!("{prefix}.{i}"), x, out);
            }
        }
        Value::String(s) => out.push((prefix.as_bytes().to_vec(), s.as_bytes().to_vec())),
        Value::Number(n) => out.push((prefix.as_bytes().to_vec(), n.to_string().into_bytes())),
        Value::Bool(b) => out.push((prefix.as_bytes().to_vec(), b.to_string().into_bytes())),
        Value::Null => out.push((prefix.as_bytes().to_vec(), Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flattens() {
        let p = super::parse(br#"{"a":{"b":"x"},"l":[1,true],"n":null}"#).unwrap();
        assert!(p.contains(&(b"json.a.b".to_vec(), b"x".to_vec())));
        assert!(p.contains(&(b"json.l.0".to_vec(), b"1".to_vec())));
        assert!(p.contains(&(b"json.l.1".to_vec(), b"true".to_vec())));
        assert!(super::parse(b"{bad").is_err());
    }

    fn arg<'a>(p: &'a super::Pairs, k: &str) -> Option<&'a [u8]> {
        p.iter().find(|(n, _)| n == k.as_bytes()).map(|(_, v)| v.as_slice())
    }

    #[test]
    fn a_document_cut_inside_a_string_value_keeps_that_value_up_to_the_cut() {
        let p = super::parse_prefix(br#"{"a":"x","b":{"c":["one","union select pass"#).unwrap();
        assert_eq!(arg(&p, "json.a"), Some(&b"x"[..]));
        assert_eq!(arg(&p, "json.b.c.0"), Some(&b"one"[..]));
        assert_eq!(arg(&p, "json.b.c.1"), Some(&b"union select pass"[..]));
    }

    #[test]
    fn a_document_cut_elsewhere_drops_only_the_unfinished_member() {
        let p = super::parse_prefix(br#"{"a":1,"b":[true,{"c":"d"}],"e":"#).unwrap();
        assert_eq!(arg(&p, "json.b.1.c"), Some(&b"d"[..]));
        assert_eq!(arg(&p, "json.e"), None);
        let p = super::parse_prefix(br#"{"a":1,"b":2"#).unwrap();
        assert_eq!(arg(&p, "json.b"), Some(&b"2"[..]), "cut right after a complete value");
        let p = super::parse_prefix(br#"{"a":"x","long_key_cut"#).unwrap();
        assert_eq!(arg(&p, "json.a"), Some(&b"x"[..]), "cut inside a key");
    }

    #[test]
    fn half_escapes_and_half_characters_at_the_cut_are_dropped() {
        let p = super::parse_prefix(b"[\"ab\\u00").unwrap();
        assert_eq!(arg(&p, "json.0"), Some(&b"ab"[..]));
        let cut = "[\"é中文".as_bytes();
        let p = super::parse_prefix(&cut[..cut.len() - 1]).unwrap();
        assert_eq!(arg(&p, "json.0"), Some("é中".as_bytes()));
        assert_eq!(super::whole_utf8("aé中".as_bytes()), "aé中".len(), "whole characters stay");
    }

    #[test]
    fn arbitrary_prefixes_never_panic() {
        let doc = br#"{"k":[1,"s\"t\u4e2d",{"x":null,"y":[[],{}]}],"z":"\\"}"#;
        for n in 0..=doc.len() {
            let _ = super::parse_prefix(&doc[..n]);
        }
        assert_eq!(super::parse_prefix(doc).unwrap(), super::parse(doc).unwrap());
    }
}
