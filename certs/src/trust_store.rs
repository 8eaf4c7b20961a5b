//! Thin I/O layer: loads a [`TrustStore`] from a directory such as `policies/trust/`:
//!
//! * `anchors/*.pem|*.crt|*.cer` – trust anchors (root CAs)
//! * `intermediates/*.pem|*.crt|*.cer` – intermediate CAs offered for path building
//! * `crl/*.pem|*.crl` – CRLs (PEM or DER)
//!
//! Missing sub-directories are skipped. Everything else in the crate is pure.

use std::fs;
use std::path::Path;

use crate::error::LoadError;
use crate::store::TrustStore;

/// Loads the store from `dir` (see module docs for the layout).
pub fn load_dir(dir: &Path) -> Result<TrustStore, LoadError> {
    let mut store = TrustStore::new();
    for (sub, exts) in
        [("anchors", &["pem", "crt", "cer"][..]), ("intermediates", &["pem", "crt", "cer"][..]), ("crl", &["pem", "crl"][..])]
    {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        let io = |e, p: &Path| LoadError::Io { path: p.display().to_string(), source: e };
        let mut files: Vec<_> = fs::read_dir(&d)
            .map_err(|e| io(e, &d))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e.to_ascii_lowercase().as_str())))
            .collect();
        files.sort();
        for f in files {
            let data = fs::read(&f).map_err(|e| io(e, &f))?;
            let res = match sub {
                "anchors" => store.add_anchors_pem(&data),
                "intermediates" => store.add_intermediates_pem(&data),
                _ => store.add_crls_pem(&data),
            };
            res.map_err(|source| LoadError::Parse { path: f.display().to_string(), source })?;
        }
    }
    Ok(store)
}
