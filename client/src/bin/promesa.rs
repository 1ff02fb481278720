//! `promesa`: the operator's command-line client.

fn main() {}
