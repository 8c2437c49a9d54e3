//! Structure-aware inputs for the module's operations.
//!
//! libFuzzer's bytes become a [`Case`] (through `arbitrary`): an operation, a seed input of that
//! operation's shape, and a few mutations at paths of that input. The seeds are real: the
//! examples' LeaderWorkerSets, the Pods, StatefulSets and Services `expand` makes of them, and
//! admission requests and reconcile inputs built from those. A mutation replaces, removes or adds
//! a field with a value from a vocabulary of the names and edge values the rules compare against
//! (or anything at all), so most inputs reach the decisions rather than the JSON parser.
//!
//! One bound is the harness's own: for the operations whose work grows with the pod count
//! (`expand`, `placement`, `reconcile`), `replicas` and `size` are folded into 0..=64. A valid
//! LeaderWorkerSet may ask for 2.1×10⁹ pods (upstream's bound), and expanding that natively
//! would only measure the machine's memory; through wasmtime the memory cap makes it a typed
//! `OutOfMemory`, which `tests/hostile` checks with the binary.

use arbitrary::Arbitrary;
use lws_core::ops::names;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// One input: which operation, which seed, what to change.
#[derive(Arbitrary, Debug)]
pub struct Case {
    operation: Operation,
    seed: u8,
    mutations: Vec<Mutation>,
}

#[derive(Arbitrary, Debug)]
enum Operation {
    Expand,
    ValidateLws,
    ValidateLwsUpdate,
    Default,
    MutatePod,
    ProtocolVersion,
    ValidateSettings,
    Validate,
    ValidateUpdate,
    Reconcile,
    Placement,
    /// Bytes that need not be JSON, to any operation (or an unknown one).
    Raw(RawTarget, Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RawTarget {
    Known(u8),
    Unknown,
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    Set { at: u16, value: Json },
    Remove { at: u16 },
    Insert { at: u16, key: Key, value: Json },
}

/// A JSON value, leaning to what the rules read.
#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Edge(EdgeNumber),
    Int(i64),
    Float(f64),
    Text(Text),
    Array(Vec<Json>),
    Object(Vec<(Key, Json)>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EdgeNumber {
    Zero,
    One,
    MinusOne,
    Two,
    MaxReplicas,
    AboveMaxReplicas,
    I32Max,
    I32MaxPlusOne,
    I32Min,
    U64Max,
    Fraction,
}

#[derive(Arbitrary, Debug)]
enum Text {
    Known(KnownText),
    Any(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum KnownText {
    Empty,
    Percent100,
    Percent50,
    Percent0,
    PercentNegative,
    PercentOver,
    PercentGarbage,
    Digits,
    LeaderCreated,
    LeaderReady,
    RecreateGroupOnPodRestart,
    NoneRestart,
    Shared,
    UniquePerReplica,
    LeaderWorker,
    LeaderExcluded,
    RollingUpdate,
    Create,
    Update,
    Delete,
    TopologyKey,
    Time,
    LwsApiVersion,
    LeaderWorkerSetKind,
    Volcano,
    Name,
}

#[derive(Arbitrary, Debug)]
enum Key {
    Known(KnownKey),
    Any(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum KnownKey {
    Replicas,
    Size,
    SubGroupPolicy,
    SubGroupSize,
    SubGroupPolicyType,
    LeaderTemplate,
    WorkerTemplate,
    RolloutStrategy,
    RollingUpdateConfiguration,
    MaxUnavailable,
    MaxSurge,
    Partition,
    StartupPolicy,
    RestartPolicy,
    NetworkConfig,
    SubdomainPolicy,
    VolumeClaimTemplates,
    Metadata,
    Labels,
    Annotations,
    Name,
    Namespace,
    Uid,
    Generation,
    Spec,
    Status,
    Containers,
    Env,
    Resources,
    ExclusiveTopology,
    SubGroupExclusiveTopology,
    SizeAnnotation,
    WorkerIndex,
    GroupIndex,
    SetName,
    TemplateRevisionHash,
    Operation,
    Object,
    OldObject,
    Settings,
    MaxGroupSize,
    MaxTotalPods,
    Nodes,
    Now,
}

impl KnownKey {
    fn as_str(self) -> &'static str {
        use KnownKey::*;
        match self {
            Replicas => "replicas",
            Size => "size",
            SubGroupPolicy => "subGroupPolicy",
            SubGroupSize => "subGroupSize",
            SubGroupPolicyType => "subGroupPolicyType",
            LeaderTemplate => "leaderTemplate",
            WorkerTemplate => "workerTemplate",
            RolloutStrategy => "rolloutStrategy",
            RollingUpdateConfiguration => "rollingUpdateConfiguration",
            MaxUnavailable => "maxUnavailable",
            MaxSurge => "maxSurge",
            Partition => "partition",
            StartupPolicy => "startupPolicy",
            RestartPolicy => "restartPolicy",
            NetworkConfig => "networkConfig",
            SubdomainPolicy => "subdomainPolicy",
            VolumeClaimTemplates => "volumeClaimTemplates",
            Metadata => "metadata",
            Labels => "labels",
            Annotations => "annotations",
            Name => "name",
            Namespace => "namespace",
            Uid => "uid",
            Generation => "generation",
            Spec => "spec",
            Status => "status",
            Containers => "containers",
            Env => "env",
            Resources => "resources",
            ExclusiveTopology => "leaderworkerset.sigs.k8s.io/exclusive-topology",
            SubGroupExclusiveTopology => "leaderworkerset.sigs.k8s.io/subgroup-exclusive-topology",
            SizeAnnotation => "leaderworkerset.sigs.k8s.io/size",
            WorkerIndex => "leaderworkerset.sigs.k8s.io/worker-index",
            GroupIndex => "leaderworkerset.sigs.k8s.io/group-index",
            SetName => "leaderworkerset.sigs.k8s.io/name",
            TemplateRevisionHash => "leaderworkerset.sigs.k8s.io/template-revision-hash",
            Operation => "operation",
            Object => "object",
            OldObject => "oldObject",
            Settings => "settings",
            MaxGroupSize => "maxGroupSize",
            MaxTotalPods => "maxTotalPods",
            Nodes => "nodes",
            Now => "now",
        }
    }
}

impl KnownText {
    fn as_str(self) -> &'static str {
        use KnownText::*;
        match self {
            Empty => "",
            Percent100 => "100%",
            Percent50 => "50%",
            Percent0 => "0%",
            PercentNegative => "-5%",
            PercentOver => "101%",
            PercentGarbage => "5x%",
            Digits => "3",
            LeaderCreated => "LeaderCreated",
            LeaderReady => "LeaderReady",
            RecreateGroupOnPodRestart => "RecreateGroupOnPodRestart",
            NoneRestart => "None",
            Shared => "Shared",
            UniquePerReplica => "UniquePerReplica",
            LeaderWorker => "LeaderWorker",
            LeaderExcluded => "LeaderExcluded",
            RollingUpdate => "RollingUpdate",
            Create => "CREATE",
            Update => "UPDATE",
            Delete => "DELETE",
            TopologyKey => "topology.kubernetes.io/zone",
            Time => "2026-11-27T00:00:00Z",
            LwsApiVersion => "leaderworkerset.x-k8s.io/v1",
            LeaderWorkerSetKind => "LeaderWorkerSet",
            Volcano => "volcano",
            Name => "sample-0-1",
        }
    }
}

impl Key {
    fn into_string(self) -> String {
        match self {
            Key::Known(key) => key.as_str().to_string(),
            Key::Any(key) => key,
        }
    }
}

impl Json {
    fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Edge(edge) => edge.value(),
            Json::Int(n) => json!(n),
            // NaN and infinities have no JSON form.
            Json::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Json::Text(Text::Known(text)) => json!(text.as_str()),
            Json::Text(Text::Any(text)) => json!(text),
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.into_string(), v.into_value()))
                    .collect(),
            ),
        }
    }
}

impl EdgeNumber {
    fn value(self) -> Value {
        use EdgeNumber::*;
        match self {
            Zero => json!(0),
            One => json!(1),
            MinusOne => json!(-1),
            Two => json!(2),
            MaxReplicas => json!(1_000_000),
            AboveMaxReplicas => json!(1_000_001),
            I32Max => json!(i32::MAX),
            I32MaxPlusOne => json!(i64::from(i32::MAX) + 1),
            I32Min => json!(i32::MIN),
            U64Max => json!(u64::MAX),
            Fraction => json!(1.5),
        }
    }
}

/// Seed inputs, built once from the examples (and what `expand` makes of them).
struct Seeds {
    manifests: Vec<Value>,
    pods: Vec<Value>,
    stateful_sets: Vec<Value>,
    services: Vec<Value>,
}

const EXAMPLES: &[&str] = &[
    include_str!("../../examples/lws.yaml"),
    include_str!("../../examples/lws-exclusive-placement.yaml"),
    include_str!("../../examples/lws-multi-template.yaml"),
    include_str!("../../examples/lws-restart-policy.yaml"),
    include_str!("../../examples/lws-rollout-strategy.yaml"),
    include_str!("../../examples/lws-startup-policy.yaml"),
    include_str!("../../examples/lws-subgroup.yaml"),
    include_str!("../../examples/lws-tpu.yaml"),
    include_str!("../../examples/lws-unique-per-replica.yaml"),
    include_str!("../../examples/lws-volume-claim-templates.yaml"),
    include_str!("../../examples/lws-pod-termination-policy.yaml"),
    include_str!("../../examples/lws-volcano.yaml"),
];

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = Seeds {
            manifests: Vec::new(),
            pods: Vec::new(),
            stateful_sets: Vec::new(),
            services: Vec::new(),
        };
        for text in EXAMPLES {
            let Ok(documents) = lws_host::documents::parse(text) else {
                panic!("an example does not parse");
            };
            for document in documents {
                let manifest = document.value;
                let list = lws_core::ops::call(names::EXPAND, manifest.to_string().as_bytes())
                    .expect("an example expands");
                let list: Value = serde_json::from_slice(&list).expect("expand answers JSON");
                for item in list["items"].as_array().into_iter().flatten() {
                    match item["kind"].as_str() {
                        Some("Pod") => seeds.pods.push(item.clone()),
                        Some("StatefulSet") => seeds.stateful_sets.push(item.clone()),
                        Some("Service") => seeds.services.push(item.clone()),
                        _ => {}
                    }
                }
                seeds.manifests.push(manifest);
            }
        }
        seeds
    })
}

fn pick(items: &[Value], seed: u8) -> Value {
    items[usize::from(seed) % items.len()].clone()
}

impl Case {
    /// The operation name and the payload bytes to call it with.
    pub fn input(self) -> (&'static str, Vec<u8>) {
        let seeds = seeds();
        let manifest = pick(&seeds.manifests, self.seed);
        let other = pick(&seeds.manifests, self.seed.wrapping_add(1));
        let (operation, mut payload) = match self.operation {
            Operation::Raw(target, bytes) => {
                let operation = match target {
                    RawTarget::Known(n) => names::ALL[usize::from(n) % names::ALL.len()],
                    RawTarget::Unknown => "explode",
                };
                return (operation, bytes);
            }
            Operation::Expand => (names::EXPAND, manifest),
            Operation::Default => (names::DEFAULT, manifest),
            Operation::ValidateLws => (names::VALIDATE_LWS, json!({"lws": manifest})),
            Operation::ValidateLwsUpdate => {
                (names::VALIDATE_LWS, json!({"lws": manifest, "old": other}))
            }
            Operation::MutatePod => (
                names::MUTATE_POD,
                json!({"pod": pick(&seeds.pods, self.seed), "context": {
                    "namespace": "default", "schedulerProvider": "volcano"}}),
            ),
            Operation::ProtocolVersion => (names::PROTOCOL_VERSION, json!({})),
            Operation::ValidateSettings => (
                names::VALIDATE_SETTINGS,
                json!({"maxGroupSize": 8, "maxTotalPods": 64, "requireExclusiveTopology": false,
                    "allowedTopologyKeys": ["kubernetes.io/hostname"]}),
            ),
            Operation::Validate => (
                names::VALIDATE,
                json!({"request": {"operation": "CREATE", "object": manifest},
                    "settings": {"maxTotalPods": 64}}),
            ),
            Operation::ValidateUpdate => (
                names::VALIDATE,
                json!({"request": {"operation": "UPDATE", "object": manifest, "oldObject": other},
                    "settings": {}}),
            ),
            Operation::Reconcile => (
                names::RECONCILE,
                reconcile_input(seeds, manifest, self.seed),
            ),
            Operation::Placement => (
                names::PLACEMENT,
                json!({"lws": manifest, "nodes": [
                    {"name": "n0", "labels": {"topology.kubernetes.io/zone": "r0"}},
                    {"name": "n1", "labels": {"topology.kubernetes.io/zone": "r1"}}]}),
            ),
        };
        for mutation in self.mutations.into_iter().take(8) {
            mutate(&mut payload, mutation);
        }
        if matches!(
            operation,
            names::EXPAND | names::PLACEMENT | names::RECONCILE
        ) {
            fold_pod_counts(&mut payload);
        }
        let bytes = serde_json::to_vec(&payload).expect("a Value serializes");
        (operation, bytes)
    }
}

/// A reconcile of `manifest` as stored, with the objects an earlier reconcile of a seed made.
fn reconcile_input(seeds: &Seeds, mut manifest: Value, seed: u8) -> Value {
    manifest["metadata"]["uid"] = json!("7b0c3a52-0000-4000-8000-000000000001");
    manifest["metadata"]["generation"] = json!(2);
    manifest["metadata"]["namespace"] = json!("default");
    let pods = |leader: bool| -> Vec<Value> {
        seeds
            .pods
            .iter()
            .filter(|pod| {
                let index = &pod["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"];
                (index == "0") == leader
            })
            .skip(usize::from(seed) % 4)
            .take(6)
            .cloned()
            .collect()
    };
    json!({
        "lws": manifest,
        "now": "2026-11-27T00:00:00Z",
        "leaderStatefulSet": pick(&seeds.stateful_sets, seed),
        "workerStatefulSets": [pick(&seeds.stateful_sets, seed.wrapping_add(1))],
        "leaderPods": pods(true),
        "workerPods": pods(false),
        "services": [pick(&seeds.services, seed)],
        "schedulerProvider": if seed % 2 == 0 { json!("volcano") } else { Value::Null },
    })
}

/// Every path in `value`, as JSON pointers, in document order.
fn pointers(value: &Value, prefix: &mut String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    let length = prefix.len();
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push('/');
                prefix.push_str(&key.replace('~', "~0").replace('/', "~1"));
                pointers(child, prefix, out);
                prefix.truncate(length);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push('/');
                prefix.push_str(&index.to_string());
                pointers(child, prefix, out);
                prefix.truncate(length);
            }
        }
        _ => {}
    }
}

fn mutate(payload: &mut Value, mutation: Mutation) {
    let mut all = Vec::new();
    pointers(payload, &mut String::new(), &mut all);
    let at = |index: u16| all[usize::from(index) % all.len()].clone();
    match mutation {
        Mutation::Set { at: index, value } => {
            if let Some(slot) = payload.pointer_mut(&at(index)) {
                *slot = value.into_value();
            }
        }
        Mutation::Remove { at: index } => {
            let target = at(index);
            let Some((parent, last)) = target.rsplit_once('/') else {
                return;
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match payload.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(index) = last.parse::<usize>() {
                        if index < items.len() {
                            items.remove(index);
                        }
                    }
                }
                _ => {}
            }
        }
        Mutation::Insert {
            at: index,
            key,
            value,
        } => match payload.pointer_mut(&at(index)) {
            Some(Value::Object(map)) => {
                map.insert(key.into_string(), value.into_value());
            }
            Some(Value::Array(items)) => items.push(value.into_value()),
            _ => {}
        },
    }
}

/// Folds every `replicas` and `size` number into 0..=64 (see the module doc).
fn fold_pod_counts(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "replicas" || key == "size" {
                    if let Some(n) = child.as_i64() {
                        *child = json!(n.rem_euclid(65));
                    } else if child.is_number() {
                        *child = json!(3);
                    }
                }
                fold_pod_counts(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fold_pod_counts),
        _ => {}
    }
}
