//! The client protocol: parsing what clients send, encoding what they get.

pub mod encode;
pub mod parse;

pub use parse::{parse, Limits, Op, ParseError, Parsed};
