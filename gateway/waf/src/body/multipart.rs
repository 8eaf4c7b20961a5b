//! `multipart/form-data`: form fields become `ARGS_POST`, file parts fill
//! `FILES*`, and every part's header lines go to `MULTIPART_PART_HEADERS`.

use super::Pairs;

/// Parsed multipart body.
#[derive(Debug, Default)]
pub struct Multipart {
    /// Non-file fields.
    pub args: Pairs,
    /// (field name, file name).
    pub files: Pairs,
    /// (field name, size).
    pub file_sizes: Vec<(Vec<u8>, usize)>,
    /// (field name, "Header: value" line).
    pub part_headers: Pairs,
    /// Strict-parsing anomaly seen.
    pub strict_error: bool,
    /// Boundary-like line not matching the boundary.
    pub unmatched_boundary: bool,
}

/// Extracts the boundary from a Content-Type value.
pub fn boundary(content_type: &str) -> Option<String> {
    for p in content_type.split(';').skip(1) {
        let p = p.trim();
        if p.len() >= 9 && p[..9].eq_ignore_ascii_case("boundary=") {
            let b = p[9..].trim().trim_matches('"');
            if !b.is_empty() {
                return Some(b.to_string());
            }
        }
    }
    None
}

fn param(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let lower = header.to_ascii_lowercase();
    let pat = format!("{name}=");
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&lower[from..], pat.as_bytes()).map(|p| p + from) {
        let before_ok = p == 0 || matches!(lower[p - 1], b';' | b' ' | b'\t');
        let start = p + pat.len();
        if before_ok {
            if header.get(start) == Some(&b'"') {
                let mut v = Vec::new();
                let mut i = start + 1;
                while i < header.len() && header[i] != b'"' {
                    // Only \" and \\ are escapes (ModSecurity); other backslashes are data.
                    if header[i] == b'\\' && i + 1 < header.len() && matches!(header[i + 1], b'"' | b'\\') {
                        i += 1;
                    }
                    v.push(header[i]);
                    i += 1;
                }
                return Some(v);
            }
            let end = header[start..].iter().position(|c| *c == b';').map(|e| start + e).unwrap_or(header.len());
            return Some(header[start..end].trim_ascii().to_vec());
        }
        from = start;
    }
    None
}

/// Parses a multipart body. Returns an error message when it is not multipart at all.
pub fn parse(body: &[u8], boundary: &str) -> Result<Multipart, String> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut mp = Multipart::default();
    let positions: Vec<usize> = memchr::memmem::find_iter(body, d).filter(|&p| p == 0 || body[p - 1] == b'\n').collect();
    if positions.is_empty() {
        return Err("multipart: no boundary found".into());
    }
    let mut closed = false;
    for (n, &p) in positions.iter().enumerate() {
        let after = p + d.len();
        if body[after..].starts_with(b"--") {
            closed = true;
            break;
        }
        let end = positions.get(n + 1).copied().unwrap_or(body.len());
        let mut part = &body[after.min(end)..end];
        // Strip line end after the delimiter and before the next one.
        part = part.strip_prefix(b"\r\n").or_else(|| part.strip_prefix(b"\n")).unwrap_or_else(|| {
            mp.strict_error = true;
            part
        });
        if n + 1 < positions.len() {
            part = part.strip_suffix(b"\r\n").or_else(|| part.strip_suffix(b"\n")).unwrap_or(part);
        }
        let (head, content) = match memchr::memmem::find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => match memchr::memmem::find(part, b"\n\n") {
                Some(i) => (&part[..i], &part[i + 2..]),
                None => {
                    mp.strict_error = true;
                    (part, &b""[..])
                }
            },
        };
        let mut name = None;
        let mut filename = None;
        let mut lines = Vec::new();
        for line in head.split(|c| *c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            lines.push(line.to_vec());
            if line.len() > 20 && line[..20].eq_ignore_ascii_case(b"content-disposition:") {
                name = param(&line[20..], "name");
                filename = param(&line[20..], "filename").or_else(|| param(&line[20..], "filename*"));
            }
        }
        let Some(name) = name else {
            mp.strict_error = true;
            continue;
        };
        for l in lines {
            mp.part_headers.push((name.clone(), l));
        }
        match filename {
            Some(f) => {
                mp.files.push((name.clone(), f));
                mp.file_sizes.push((name, content.len()));
            }
            None => mp.args.push((name, content.to_vec())),
        }
    }
    if !closed {
        mp.strict_error = true;
    }
    Ok(mp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XX--\r\n";
        let mp = super::parse(body, "XX").unwrap();
        assert_eq!(mp.args, vec![(b"a".to_vec(), b"hello".to_vec())]);
        assert_eq!(mp.files, vec![(b"f".to_vec(), b"x.php".to_vec())]);
        assert_eq!(mp.part_headers.len(), 3);
        assert!(!mp.strict_error);
        assert_eq!(super::boundary("multipart/form-data; boundary=\"XX\"").as_deref(), Some("XX"));
    }
}
