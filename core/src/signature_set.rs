//! The signature files of one bundle, by the key id each is filed under: what a bundle carries as
//! `cerro/signatures/<key_id>.sig` (spec/signature.md §3), what a store record keeps
//! (spec/store.md §2) and what a `Verified` witness was checked with. One type for all of them,
//! keyed by a validated [`KeyId`], so a key id that could not be a file name never gets in.
//!
//! The bytes are the signature files as found, unparsed and unchecked: `crate::verify` parses
//! each and checks that it names the key id it is filed under.

use crate::ids::KeyId;
use std::collections::btree_map;
use std::collections::BTreeMap;

/// Signature files by key id, in key-id order (the order a bundle writer emits them in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureSet(BTreeMap<KeyId, Vec<u8>>);

impl SignatureSet {
    pub fn new() -> Self {
        Self::default()
    }
    /// File `bytes` under `id`, returning what was filed there before.
    pub fn insert(&mut self, id: KeyId, bytes: Vec<u8>) -> Option<Vec<u8>> {
        self.0.insert(id, bytes)
    }
    /// The file under `id`.
    pub fn get(&self, id: &KeyId) -> Option<&[u8]> {
        self.0.get(id).map(Vec::as_slice)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The key ids, in order.
    pub fn keys(&self) -> impl Iterator<Item = &KeyId> {
        self.0.keys()
    }
    /// `(key id, file bytes)`, in key-id order.
    pub fn iter(&self) -> btree_map::Iter<'_, KeyId, Vec<u8>> {
        self.0.iter()
    }
}

impl FromIterator<(KeyId, Vec<u8>)> for SignatureSet {
    fn from_iter<I: IntoIterator<Item = (KeyId, Vec<u8>)>>(it: I) -> Self {
        Self(it.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a SignatureSet {
    type Item = (&'a KeyId, &'a Vec<u8>);
    type IntoIter = btree_map::Iter<'a, KeyId, Vec<u8>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for SignatureSet {
    type Item = (KeyId, Vec<u8>);
    type IntoIter = btree_map::IntoIter<KeyId, Vec<u8>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_by_key_id_and_one_file_per_id() {
        let id = |s: &str| KeyId::new(s).unwrap();
        let mut s: SignatureSet = [(id("bob"), b"b".to_vec()), (id("alice"), b"a".to_vec())]
            .into_iter()
            .collect();
        assert_eq!(s.len(), 2);
        let ids: Vec<&str> = s.keys().map(KeyId::as_str).collect();
        assert_eq!(ids, ["alice", "bob"]);
        assert_eq!(s.insert(id("bob"), b"c".to_vec()), Some(b"b".to_vec()));
        assert_eq!(s.get(&id("bob")), Some(&b"c"[..]));
        assert_eq!(s.len(), 2);
        assert!(SignatureSet::new().is_empty());
    }
}
