//! `lws-host`: the I/O half of lws. It reads manifests and cluster state, asks `lws.wasm`
//! (through [`engine::Engine`]) what to do, and does it. No LeaderWorkerSet rule lives here.

pub mod certs;
pub mod controller;
pub mod documents;
pub mod engine;
pub mod guest;
pub mod install;
pub mod kube_client;
pub mod preview;
pub mod settings;
pub mod webhook;
pub mod zap_console;
