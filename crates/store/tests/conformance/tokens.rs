//! Token revocations: recorded, answered, listed while the token could still be used, and
//! idempotent.

use chrono::{TimeDelta, Utc};
use session_buddy_store::Store;

pub async fn revoked_tokens_are_recorded_and_listed_until_they_expire(store: &dyn Store) {
    let now = Utc::now();
    assert!(!store.is_revoked("jti-a").await.unwrap());
    store
        .revoke_token("jti-a", Some(now + TimeDelta::hours(1)))
        .await
        .unwrap();
    store.revoke_token("jti-forever", None).await.unwrap();
    store
        .revoke_token("jti-old", Some(now - TimeDelta::minutes(5)))
        .await
        .unwrap();
    // Revoking twice is not an error.
    store
        .revoke_token("jti-a", Some(now + TimeDelta::hours(2)))
        .await
        .unwrap();
    assert!(store.is_revoked("jti-a").await.unwrap());
    assert!(store.is_revoked("jti-forever").await.unwrap());
    assert!(!store.is_revoked("jti-b").await.unwrap());
    // A quote or a wildcard in a jti is data, not SQL.
    assert!(!store.is_revoked("' OR 1=1 --").await.unwrap());
    assert!(!store.is_revoked("%").await.unwrap());
    let mut listed = store.revoked_tokens(now).await.unwrap();
    listed.sort();
    assert_eq!(listed, ["jti-a", "jti-forever"]);
    let later = store
        .revoked_tokens(now + TimeDelta::hours(3))
        .await
        .unwrap();
    assert_eq!(later, ["jti-forever"]);
}
