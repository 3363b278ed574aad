//! The client protocol: parsing what clients send, encoding what they get.

pub mod connect;
pub mod encode;
pub mod parse;
pub mod trace;

pub use parse::{parse, Limits, Op, ParseError, Parsed};
