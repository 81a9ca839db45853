//! Data in and out. Every service's export is read into one shape, [`Conversation`]: a tree of
//! messages, the branch its service showed marked, and what could not be kept said with its
//! reason. Reading streams (one conversation in memory at a time) and stops at the limits of
//! [`Limits`], so a hostile file costs bounded memory and time. Chats go out as Markdown and
//! as our JSON ([`ours`]), which reads back into the same chats.

pub mod archive;
mod chatgpt;
mod claude;
mod conversation;
pub mod markdown;
mod openwebui;
pub mod ours;
pub mod prompts;
mod read;
mod surrogates;
mod tree;

pub use conversation::{Conversation, FileBytes, FileRef, Message, Note, NoteKind, Role, Source};
pub use read::{read_conversations, Limits, ReadError};
