//! Typed ids: a `ChatId` cannot be passed where a `UserId` is meant. New ids are UUIDv7,
//! time-ordered so that inserts stay at the right edge of the primary-key index.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    )*};
}

typed_id!(
    UserId,
    SessionId,
    AccountId,
    VerificationId,
    TeamId,
    TeamMemberId,
    InviteId,
    FolderId,
    TagId,
    ChatId,
    MessageId,
    PromptId,
    PromptVersionId,
    ApiKeyId,
    ModelId,
    ConnectionId,
    InstanceInviteId,
    QuotaId,
    AuditEventId,
    MailId,
    FileId,
    AccessTokenId,
);
