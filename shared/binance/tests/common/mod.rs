//! Helpers shared by the integration tests: fixture loading and the test account.

// Each test crate includes this module and uses a different subset of it.
#![allow(dead_code)]

use acctmon_domain::Account;

mod compact;
pub use compact::compact;

/// Where the payloads live.
pub const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/");

/// The text of one file of `test_data/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{TEST_DATA}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// A fixture as one line with its keys in their original order, as it comes off the socket.
pub fn compact_fixture(name: &str) -> String {
    compact(&fixture(name))
}

/// The account alias the tests decode for.
pub fn account() -> Account {
    Account::new("main").expect("valid alias")
}

/// Sets the value at a JSON pointer of a fixture and returns the edited text (keys sorted, one line).
pub fn mutate(name: &str, pointer: &str, value: serde_json::Value) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&fixture(name)).expect("fixture is JSON");
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{name} has no {pointer}")) = value;
    doc.to_string()
}

/// Removes the field at a JSON pointer of a fixture and returns the edited text.
pub fn remove(name: &str, pointer: &str) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&fixture(name)).expect("fixture is JSON");
    let (parent, key) = pointer.rsplit_once('/').expect("pointer with a parent");
    doc.pointer_mut(parent)
        .and_then(|p| p.as_object_mut())
        .and_then(|p| p.remove(key))
        .unwrap_or_else(|| panic!("{name} has no {pointer}"));
    doc.to_string()
}
