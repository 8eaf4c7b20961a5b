//! XML bodies, simplified: `XML:/*` yields the document's text content and
//! `XML://@*` the attribute values. Not a validating parser.

/// Text content (one value) and attribute values.
pub fn parse(body: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut text = Vec::new();
    let mut attrs = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'<' {
            let end = memchr::memchr(b'>', &body[i..]).map(|e| i + e).unwrap_or(body.len());
            let tag = &body[i + 1..end];
            if body[i..].starts_with(b"<![CDATA[") {
                let close = memchr::memmem::find(&body[i..], b"]]>").map(|e| i + e).unwrap_or(body.len());
                text.extend_from_slice(&body[(i + 9).min(close)..close]);
                i = close + 3;
                continue;
            }
            if !tag.starts_with(b"/") && !tag.starts_with(b"?") && !tag.starts_with(b"!") {
                let mut j = 0;
                while j < tag.len() {
                    if tag[j] == b'"' || tag[j] == b'\'' {
                        let q = tag[j];
                        let s = j + 1;
                        let e = memchr::memchr(q, &tag[s..]).map(|e| s + e).unwrap_or(tag.len());
                        attrs.push(decode_entities(&tag[s..e]));
                        j = e + 1;
                    } else {
                        j += 1;
                    }
                }
            }
            i = end + 1;
        } else {
            let end = memchr::memchr(b'<', &body[i..]).map(|e| i + e).unwrap_or(body.len());
            text.extend_from_slice(&decode_entities(&body[i..end]));
            i = end;
        }
    }
    (text, attrs)
}

/// Decodes the XML predefined entities and numeric character references (to UTF-8).
pub fn decode_entities(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'&' {
            if let Some(semi) = v[i..].iter().take(12).position(|c| *c == b';') {
                let ent = &v[i + 1..i + semi];
                let decoded: Option<Vec<u8>> = match ent {
                    b"lt" => Some(b"<".to_vec()),
                    b"gt" => Some(b">".to_vec()),
                    b"amp" => Some(b"&".to_vec()),
                    b"quot" => Some(b"\"".to_vec()),
                    b"apos" => Some(b"'".to_vec()),
                    _ if ent.first() == Some(&b'#') => {
                        let num = &ent[1..];
                        let s = String::from_utf8_lossy(num);
                        let code = if let Some(h) = s.strip_prefix('x').or_else(|| s.strip_prefix('X')) {
                            u32::from_str_radix(h, 16).ok()
                        } else {
                            s.parse::<u32>().ok()
                        };
                        code.and_then(char::from_u32).map(|c| c.to_string().into_bytes())
                    }
                    _ => None,
                };
                if let Some(d) = decoded {
                    out.extend_from_slice(&d);
                    i += semi + 1;
                    continue;
                }
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_and_attrs() {
        let (t, a) = super::parse(b"<?xml version=\"1.0\"?><a x='1'>hi<b>there</b></a>");
        assert_eq!(t, b"hithere");
        assert_eq!(a, vec![b"1".to_vec()]);
    }
}
