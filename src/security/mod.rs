//! Security, in one place: who a client is and what it may do.
//!
//! - `auth`: authentication of a CONNECT (tokens, users and passwords,
//!   bcrypt, nkeys over the INFO nonce, TLS certificate mapping), producing
//!   an identity bound to an account.
//! - `authz`: permissions compiled once per user per shard, with a decision
//!   cache; the connection holds them from CONNECT on.
//! - `account`: account ids and the stream and service import edges
//!   between their subject spaces.
//! - `dn`: distinguished names as verify_and_map compares them.
//! - `tls`: rustls settings, certificate loading and the per-connection
//!   TLS state.
//! - `explain`: `natrix explain`, the offline answer to why an operation
//!   would be allowed or denied; `explain_chain` walks operator mode's
//!   CONNECT checks for it, step by step.
//! - `jwt`: NATS JWTs (decode, verify, typed claims) and `.creds` files.
//! - `operator`: operator mode: trusted operators, the account resolver,
//!   verified JWT accounts and the CONNECT-time chain for JWT users.
//! - `resolver`: account resolvers beyond MEMORY: URL, full and cache
//!   directories, and the in-memory cache in front of them.
//!
//! Nothing here runs per message: the message path sees only the compiled
//! permissions and account id a connection was bound to.

pub mod account;
pub mod auth;
pub mod authz;
pub mod dn;
pub mod explain;
pub mod explain_chain;
pub mod jwt;
pub mod operator;
pub mod resolver;
pub mod tls;
