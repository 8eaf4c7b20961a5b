//! Refresh tokens must be usable later, so they cannot be stored as hashes: they are sealed
//! (AES-256-GCM) with a key generated into the data directory (0600) before they reach the
//! session database.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("token key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("token sealing failed")]
    Crypto,
}

pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Sealer {
    /// Loads the 32-byte key from `file`, or generates it (mode 0600).
    pub fn load_or_create(file: &Path) -> Result<Self, SealError> {
        let rng = SystemRandom::new();
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                rng.fill(&mut k).map_err(|_| SealError::Crypto)?;
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                super::assertion::write_private(file, &k)?;
                k.to_vec()
            }
            Err(e) => return Err(e.into()),
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::Crypto)?;
        Ok(Sealer { key: LessSafeKey::new(key), rng })
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plain: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Crypto)?;
        let mut buf = plain.as_bytes().to_vec();
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf).map_err(|_| SealError::Crypto)?;
        Ok([nonce.to_vec(), buf].concat())
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Crypto);
        }
        let (n, c) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| SealError::Crypto)?;
        let mut buf = c.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::empty(), &mut buf).map_err(|_| SealError::Crypto)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Crypto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_only_with_the_key_and_intact() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::load_or_create(&dir.path().join("k")).unwrap();
        let sealed = s.seal("rt-secret").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"rt-secret"), "never stored in clear");
        assert_eq!(Sealer::load_or_create(&dir.path().join("k")).unwrap().open(&sealed).unwrap(), "rt-secret");
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(s.open(&bad).is_err());
        let other = Sealer::load_or_create(&tempfile::tempdir().unwrap().path().join("k")).unwrap();
        assert!(other.open(&sealed).is_err());
    }
}
