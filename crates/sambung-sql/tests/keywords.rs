//! The keyword list against the live server: every name PostgreSQL would read as a key word
//! is quoted, and every quoted name round-trips through a real table.

use sambung_sql::quote_ident;
use sambung_testkit::TestDb;

#[tokio::test]
async fn every_key_word_of_the_server_is_quoted_and_usable_as_a_name() {
    let db = TestDb::empty().await;
    let words: Vec<(String, String)> =
        sqlx::query_as("SELECT word, catcode::text FROM pg_get_keywords() ORDER BY word")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert!(words.len() > 400, "{} key words", words.len());
    for (word, category) in &words {
        let quoted = quote_ident(word);
        if category != "U" {
            assert_eq!(quoted, format!("\"{word}\""), "{word} ({category})");
        }
        // As a table and a column name, in a statement built the way the tools build theirs.
        sqlx::raw_sql(&format!(
            "CREATE TABLE {quoted} ({quoted} text); INSERT INTO {quoted} ({quoted}) VALUES ('v');"
        ))
        .execute(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{word}: {e}"));
        let value: String = sqlx::query_scalar(&format!("SELECT {quoted}.{quoted} FROM {quoted}"))
            .fetch_one(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{word}: {e}"));
        assert_eq!(value, "v", "{word}");
    }
}
