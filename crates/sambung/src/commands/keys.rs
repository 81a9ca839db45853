//! `sambung keys generate|rotate`: the master key of the API-key encryption.

use sambung_config::Config;
use sambung_db::secret::Cipher;

use super::connect;

pub fn generate() -> anyhow::Result<()> {
    println!("{}", sambung_config::EncryptionKey::generate());
    Ok(())
}

pub async fn rotate(config: &Config) -> anyhow::Result<()> {
    let old = config
        .encryption_key
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("ENCRYPTION_KEY is not set: it must hold the current key\nhint: set ENCRYPTION_KEY to the key the API keys are encrypted with"))?;
    let new = config.new_encryption_key.as_ref().ok_or_else(|| {
        anyhow::anyhow!("NEW_ENCRYPTION_KEY is not set\nhint: make one with `sambung keys generate` and pass it as NEW_ENCRYPTION_KEY (in the environment or .env)")
    })?;
    if new == old {
        anyhow::bail!("NEW_ENCRYPTION_KEY is the current key; nothing to rotate");
    }
    let pool = connect(config).await?;
    let count = sambung_db::api_keys::rotate_master_key(
        &pool,
        &Cipher::new(old.as_bytes()),
        &Cipher::new(new.as_bytes()),
    )
    .await?;
    pool.close().await;
    println!("Re-encrypted {count} API keys. Now set ENCRYPTION_KEY to the new key.");
    Ok(())
}
