//! Secrets: Argon2id password hashes, random tokens stored only as hashes, and AES-256-GCM
//! encryption of provider API keys.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{DomainError, Result};

/// Argon2id (the argon2 crate's default, OWASP's recommended parameters) as a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::invalid("password", e.to_string()))
}

/// Whether `password` matches the PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

pub use sambung_config::random_token;

/// What is stored of a token: its SHA-256, hex. A token has 256 random bits, so a fast hash
/// is enough (unlike a password).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

const NONCE_LEN: usize = 12;

/// AES-256-GCM under the master key (`ENCRYPTION_KEY`), a fresh random nonce per encryption,
/// and the row's id as associated data so a ciphertext cannot be moved to another row.
#[derive(Clone)]
pub struct Cipher {
    cipher: Aes256Gcm,
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Cipher {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// nonce || ciphertext || tag
    pub fn encrypt(&self, plaintext: &[u8], associated: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    pub fn decrypt(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() <= NONCE_LEN {
            return Err(DomainError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: associated,
                },
            )
            .map_err(|_| DomainError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn encryption_round_trips_with_a_fresh_nonce_and_rejects_tampering() {
        let cipher = Cipher::new(&[7; 32]);
        let a = cipher.encrypt(b"sk-secret-1234", b"row-1");
        let b = cipher.encrypt(b"sk-secret-1234", b"row-1");
        assert_ne!(a, b, "the same plaintext must not encrypt the same twice");
        assert_eq!(cipher.decrypt(&a, b"row-1").unwrap(), b"sk-secret-1234");
        assert!(
            matches!(cipher.decrypt(&a, b"row-2"), Err(DomainError::Decrypt)),
            "moved to another row"
        );
        let mut tampered = a.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            cipher.decrypt(&tampered, b"row-1"),
            Err(DomainError::Decrypt)
        ));
        assert!(
            matches!(
                Cipher::new(&[8; 32]).decrypt(&a, b"row-1"),
                Err(DomainError::Decrypt)
            ),
            "wrong key"
        );
        assert!(matches!(
            cipher.decrypt(&a[..5], b"row-1"),
            Err(DomainError::Decrypt)
        ));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), a);
    }
}
