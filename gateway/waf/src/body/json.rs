//! JSON bodies: flattened into `json.a.b` / `json.list.0` arguments (Coraza naming).

use super::Pairs;
use serde_json::Value;

/// Flattens a JSON document. Returns an error message on invalid JSON.
pub fn parse(body: &[u8]) -> Result<Pairs, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    walk("json", &v, &mut out);
    Ok(out)
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
}
