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

/// Password hashes being computed at once. Each costs a core for tens of milliseconds (and
/// Argon2id's 19 MiB), so they run on the blocking pool, one per core at most: sign-ins queue
/// behind each other, never in front of the requests every other user makes.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// Run a password hash's work off the async workers, [`HASHING`] at a time.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    // The semaphore is never closed; the task panics only if the hash itself does.
    let _permit = HASHING.acquire().await;
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Argon2id (the argon2 crate's default, OWASP's recommended parameters) as a PHC string,
/// computed off the async workers.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    hashing(move || hash_password_now(&password)).await
}

fn hash_password_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::invalid("password", e.to_string()))
}

/// How a stored password hash matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMatch {
    No,
    Yes,
    /// It matched a hash in an older format (Better Auth's scrypt): store a new Argon2id hash.
    YesRehash,
}

/// Whether `password` matches `hash`: an Argon2 PHC string, or a hash imported from the
/// original platform in Better Auth's scrypt format. Computed off the async workers.
pub async fn verify_password(password: &str, hash: &str) -> PasswordMatch {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    hashing(move || verify_password_now(&password, &hash)).await
}

fn verify_password_now(password: &str, hash: &str) -> PasswordMatch {
    let matched = if hash.starts_with("$argon2") {
        PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    } else {
        return match verify_better_auth_scrypt(password, hash) {
            true => PasswordMatch::YesRehash,
            false => PasswordMatch::No,
        };
    };
    if matched {
        PasswordMatch::Yes
    } else {
        PasswordMatch::No
    }
}

/// Spend the time of one password check on nothing, so that an unknown email answers as
/// slowly as a wrong password (no account discovery by timing).
pub async fn verify_nothing(password: &str) {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        hash_password_now("not a password of anyone").unwrap_or_default()
    });
    let password = password.to_owned();
    hashing(move || verify_password_now(&password, &DUMMY)).await;
}

/// Better Auth's `salthex:keyhex`: scrypt (N=16384, r=16, p=1, 64 bytes) of the
/// NFKC-normalised password, with the salt's hex text itself as the salt (as
/// `@better-auth/utils/password` does).
fn verify_better_auth_scrypt(password: &str, hash: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let Some((salt, key)) = hash.split_once(':') else {
        return false;
    };
    let Ok(expected) = hex::decode(key) else {
        return false;
    };
    if expected.len() != 64 || salt.is_empty() {
        return false;
    }
    let Ok(params) = scrypt::Params::new(14, 16, 1, 64) else {
        return false;
    };
    let normalised: String = password.nfkc().collect();
    let mut derived = [0u8; 64];
    if scrypt::scrypt(
        normalised.as_bytes(),
        salt.as_bytes(),
        &params,
        &mut derived,
    )
    .is_err()
    {
        return false;
    }
    // Constant time: every byte is compared whatever the first difference.
    bool::from(subtle::ConstantTimeEq::ct_eq(&derived[..], &expected[..]))
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

    /// The text sealed under `associated` (a provider key, sealed with its key's or
    /// connection's id).
    pub fn decrypt_text(&self, sealed: &[u8], associated: &[u8]) -> Result<String> {
        String::from_utf8(self.decrypt(sealed, associated)?).map_err(|_| DomainError::Decrypt)
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
        let hash = hash_password_now("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(
            verify_password_now("correct horse", &hash),
            PasswordMatch::Yes
        );
        assert_eq!(
            verify_password_now("correct hors", &hash),
            PasswordMatch::No
        );
        assert_eq!(
            verify_password_now("correct horse", "not a hash"),
            PasswordMatch::No
        );
    }

    /// Hashing must leave the async workers free: on a runtime of one thread, a task that is
    /// ready runs while a password is checked (with the hash computed in the async fn, the
    /// check finished before anything else ran: 120 sign-ins stalled every other request).
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_workers_free() {
        let hash = hash_password("correct horse").await.unwrap();
        let order = std::sync::Mutex::new(Vec::new());
        tokio::join!(
            async {
                order.lock().unwrap().push("checking");
                verify_password("correct horse", &hash).await;
                order.lock().unwrap().push("checked");
            },
            async {
                while order.lock().unwrap().is_empty() {
                    tokio::task::yield_now().await;
                }
                order.lock().unwrap().push("other task ran");
            },
        );
        assert_eq!(
            *order.lock().unwrap(),
            ["checking", "other task ran", "checked"]
        );
    }

    /// Made by Python's `hashlib.scrypt` (OpenSSL) the way Better Auth makes its hashes: the
    /// NFKC form of the password, the salt's hex text as the salt.
    const BETTER_AUTH_HASH: &str = "5f1c0a3e9b7d2c4f8a6e1b3d5c7f9a0b:adedcd4114e3b2205c7f44d7fffa7d20a8b260672193fb79039f409f9ff0acdef967d95a525f62fea5ddcd71d070f15e68dd6aeb4976fb2e7ca6360e1ac4a413";

    #[test]
    fn better_auth_scrypt_hashes_verify_and_ask_for_a_rehash() {
        // Full-width letters: the same password once NFKC-normalised.
        assert_eq!(
            verify_password_now(
                "\u{ff50}\u{ff41}\u{ff53}\u{ff53}word-\u{fc}n\u{ef}code",
                BETTER_AUTH_HASH
            ),
            PasswordMatch::YesRehash
        );
        assert_eq!(
            verify_password_now("password-ünïcode", BETTER_AUTH_HASH),
            PasswordMatch::YesRehash
        );
        assert_eq!(
            verify_password_now("password-unicode", BETTER_AUTH_HASH),
            PasswordMatch::No
        );
        let (salt, key) = BETTER_AUTH_HASH.split_once(':').unwrap();
        for broken in [
            format!("{salt}:{}", &key[2..]),
            format!("{salt}:zz{}", &key[2..]),
            format!(":{key}"),
            salt.to_owned(),
        ] {
            assert_eq!(
                verify_password_now("password-ünïcode", &broken),
                PasswordMatch::No,
                "{broken}"
            );
        }
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
