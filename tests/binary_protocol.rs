//! Binary-protocol clients (tokio-postgres here; JDBC and others alike)
//! read and write the Clerk id types, and cannot store an invalid id.

use pg_clerk_e2e::{connect, ClerkId};
use tokio_postgres::error::SqlState;

async fn fresh_table(client: &tokio_postgres::Client, name: &str) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name};
             CREATE TABLE {name} (user_id clerk_user_id PRIMARY KEY, org_id clerk_org_id, session_id clerk_session_id);"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn ids_round_trip_in_binary() {
    let client = connect().await;
    fresh_table(&client, "bin_round_trip").await;
    let (user, org, sess) = (ClerkId("user_2NNEqL2nrIRdJ194ndJqAHwEfxC".into()), ClerkId("org_1".into()), ClerkId("sess_1".into()));
    client.execute("INSERT INTO bin_round_trip VALUES ($1, $2, $3)", &[&user, &org, &sess]).await.unwrap();
    let row = client.query_one("SELECT user_id, org_id, session_id FROM bin_round_trip WHERE user_id = $1", &[&user]).await.unwrap();
    assert_eq!(row.get::<_, ClerkId>(0), user);
    assert_eq!(row.get::<_, ClerkId>(1), org);
    assert_eq!(row.get::<_, ClerkId>(2), sess);
}

#[tokio::test]
async fn binary_receive_validates_like_text_input() {
    let client = connect().await;
    fresh_table(&client, "bin_validation").await;
    for bad in ["usr_1", "user_", "user_a b", "USER_a", "org_1"] {
        let err = client.execute("INSERT INTO bin_validation (user_id) VALUES ($1)", &[&ClerkId(bad.into())]).await.expect_err(bad);
        let db = err.as_db_error().expect("a database error");
        assert_eq!(db.code(), &SqlState::INVALID_TEXT_REPRESENTATION, "{bad}");
        assert!(db.message().contains("clerk_user_id") && db.message().contains(bad), "{}", db.message());
    }
    let too_long = ClerkId(format!("user_{}", "a".repeat(60)));
    assert!(client.execute("INSERT INTO bin_validation (user_id) VALUES ($1)", &[&too_long]).await.is_err());
    let count: i64 = client.query_one("SELECT count(*) FROM bin_validation", &[]).await.unwrap().get(0);
    assert_eq!(count, 0, "nothing invalid was stored");
    // The connection is still usable after the errors.
    client.execute("INSERT INTO bin_validation (user_id) VALUES ($1)", &[&ClerkId("user_ok".into())]).await.unwrap();
}

#[tokio::test]
async fn current_clerk_user_reads_over_binary_protocol() {
    let mut client = connect().await;
    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&r#"{"sub":"user_bin","org_id":"org_bin"}"#]).await.unwrap();
    let row = tx.query_one("SELECT current_clerk_user(), current_clerk_org(), current_clerk_claims()->>'sub'", &[]).await.unwrap();
    assert_eq!(row.get::<_, ClerkId>(0), ClerkId("user_bin".into()));
    assert_eq!(row.get::<_, ClerkId>(1), ClerkId("org_bin".into()));
    assert_eq!(row.get::<_, String>(2), "user_bin");
    tx.commit().await.unwrap();
}
