//! natrix: a NATS-compatible message broker, thread-per-core on io_uring.
//!
//! Data flows one way through the modules: `server` binds the listeners and
//! starts one `shard` per core; each shard owns its connections (`conn`),
//! which parse input with `proto`, look subjects up in the shard's own
//! `sublist`, and reach other shards only through the `ShardMsg`s of `shard`.
//! Nothing on the message path takes a lock.
//!
//! Security: `auth` checks a CONNECT once and binds the connection to an
//! account (`account`) and to permissions compiled per shard (`authz`);
//! `explain` answers offline why an operation would be allowed or denied.

pub mod account;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod config;
pub mod conn;
pub mod explain;
pub mod fanout;
pub mod fxhash;
pub mod log;
pub mod options;
pub mod proto;
pub mod server;
pub mod shard;
pub mod subject;
pub mod sublist;
pub mod tls;
