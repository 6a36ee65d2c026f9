//! The group's checkpoint (SPEC §10): the same bytes `run` writes to its
//! state directory (the checkpoint document with the stream's position,
//! and the engine state file) as one object in a JetStream object store,
//! and a pointer to it in a key-value bucket that never expires (state
//! can outgrow a key-value entry).
//!
//! Fencing: every write of the pointer is `update(key, value, revision)`
//! with the revision this holder last wrote or read. A new holder first
//! *claims* the pointer (rewrites it with its own term, the lease
//! revision at which it took the lease), so any later write by an older
//! holder fails on the revision: a stale instance cannot move the
//! group's checkpoint, and learns from that failure that it is stale.
//! Objects are named by term and generation, so a stale holder's object
//! never replaces the one the pointer names; it deletes its own orphan.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, object_store};
use serde::{Deserialize, Serialize};

use super::lease::{Lease, Names};
use crate::state::writer::{CheckpointWrite, CheckpointWriter};

/// The pointer's key in its bucket.
pub(crate) const POINTER_KEY: &str = "pointer";
/// How long one checkpoint write may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The value of the pointer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pointer {
    /// The object holding the checkpoint; `None` before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) object: Option<String>,
    /// The term (lease revision) of the holder that wrote this value.
    pub(crate) term: u64,
    pub(crate) holder: String,
    /// The audit stream's durable consumer of that term (the next holder
    /// deletes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) consumer: Option<String>,
    /// The last audit stream sequence the checkpoint took.
    #[serde(default)]
    pub(crate) seq: u64,
}

/// A checkpoint as loaded: the document and the engine state bytes.
pub(crate) struct Loaded {
    pub(crate) doc: Vec<u8>,
    pub(crate) engine: Vec<u8>,
}

/// The object's bytes: the document (compact JSON, one line), a newline,
/// the engine state file.
fn encode(doc: &[u8], engine: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(doc.len() + 1 + engine.len());
    out.extend_from_slice(doc);
    out.push(b'\n');
    out.extend_from_slice(engine);
    out
}

fn decode(bytes: Vec<u8>) -> Option<Loaded> {
    let nl = memchr::memchr(b'\n', &bytes)?;
    Some(Loaded {
        doc: bytes[..nl].to_vec(),
        engine: bytes[nl + 1..].to_vec(),
    })
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SaveError {
    /// The pointer was written by a later term: this holder is stale.
    #[error("the checkpoint pointer was claimed by a later holder (fenced)")]
    Fenced,
    #[error("{0}")]
    Other(String),
}

/// The pointer and the object store of one group, as its holder uses
/// them.
pub(crate) struct Checkpoints {
    kv: kv::Store,
    objects: object_store::ObjectStore,
    /// The pointer's revision as this holder last wrote it.
    revision: AtomicU64,
    /// The pointer's value as this holder last wrote it.
    current: Mutex<Pointer>,
}

impl Checkpoints {
    /// Opens (creating when missing) the pointer bucket and the object
    /// store of `names`.
    pub(crate) async fn open(
        js: &jetstream::Context,
        names: &Names,
        replicas: usize,
    ) -> Result<Checkpoints, String> {
        let kv = super::lease::bucket(
            js,
            kv::Config {
                bucket: names.pointer_bucket.clone(),
                description: "mcpwatch: where the group's checkpoint is".into(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            },
        )
        .await?;
        let objects = match js.get_object_store(&names.objects).await {
            Ok(o) => o,
            Err(_) => match js
                .create_object_store(object_store::Config {
                    bucket: names.objects.clone(),
                    description: Some("mcpwatch: the group's checkpoints".into()),
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
            {
                Ok(o) => o,
                Err(e) => js.get_object_store(&names.objects).await.map_err(|_| {
                    format!("cannot create the object store {}: {e}", names.objects)
                })?,
            },
        };
        Ok(Checkpoints {
            kv,
            objects,
            revision: AtomicU64::new(0),
            current: Mutex::new(Pointer::default()),
        })
    }

    /// Claims the pointer for `lease`'s term and loads the checkpoint it
    /// names: from now on, a write by an earlier holder fails. Returns
    /// the previous value (its consumer is the old term's) and the
    /// checkpoint, if any.
    pub(crate) async fn claim(
        &self,
        lease: &Lease,
        consumer: &str,
    ) -> Result<(Pointer, Option<Loaded>), String> {
        for _ in 0..20 {
            if let Some(why) = lease.lost() {
                return Err(format!("lease lost while claiming the checkpoint: {why}"));
            }
            let entry = self
                .kv
                .entry(POINTER_KEY)
                .await
                .map_err(|e| format!("cannot read the checkpoint pointer: {e}"))?;
            let (before, rev) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => (
                    serde_json::from_slice::<Pointer>(&e.value).map_err(|err| {
                        format!("the checkpoint pointer is not mcpwatch's ({err})")
                    })?,
                    e.revision,
                ),
                Some(e) => (Pointer::default(), e.revision),
                None => (Pointer::default(), 0),
            };
            if before.term > lease.term {
                // Only if the lease bucket was deleted and made again
                // (its revisions restart): the compare-and-set below is
                // the fence either way.
                tracing::warn!(
                    "the checkpoint pointer names a later term than this lease ({} > {}); was the lease bucket made again?",
                    before.term,
                    lease.term
                );
            }
            let mine = Pointer {
                object: before.object.clone(),
                term: lease.term,
                holder: lease.holder.clone(),
                consumer: Some(consumer.to_string()),
                seq: before.seq,
            };
            let value = serde_json::to_vec(&mine).unwrap_or_default();
            match self.kv.update(POINTER_KEY, value.into(), rev).await {
                Ok(new) => {
                    self.revision.store(new, Ordering::Release);
                    if let Ok(mut c) = self.current.lock() {
                        *c = mine;
                    }
                    let loaded = match &before.object {
                        Some(name) => Some(self.load(name).await?),
                        None => None,
                    };
                    return Ok((before, loaded));
                }
                // Read a stale value, or raced: read again.
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(format!("cannot claim the checkpoint pointer: {e}")),
            }
        }
        Err("the checkpoint pointer kept changing while being claimed".into())
    }

    async fn load(&self, name: &str) -> Result<Loaded, String> {
        use tokio::io::AsyncReadExt;
        let mut obj = self
            .objects
            .get(name)
            .await
            .map_err(|e| format!("cannot read the checkpoint {name}: {e}"))?;
        let mut bytes = Vec::new();
        obj.read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("cannot read the checkpoint {name}: {e}"))?;
        decode(bytes).ok_or_else(|| format!("the checkpoint {name} is damaged"))
    }

    /// Stores one checkpoint: the object first, then the pointer to it,
    /// fenced by the pointer's revision; then the previous object goes.
    pub(crate) async fn save(
        &self,
        lease: &Lease,
        engine_file: &str,
        bytes: Vec<u8>,
        seq: u64,
    ) -> Result<(), SaveError> {
        if let Some(why) = lease.lost() {
            return Err(SaveError::Other(format!("lease lost: {why}")));
        }
        let name = format!("{}-{engine_file}", lease.term);
        self.objects
            .put(name.as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| SaveError::Other(format!("cannot store the checkpoint {name}: {e}")))?;
        let mut next = self.current.lock().map(|c| c.clone()).unwrap_or_default();
        let previous = next.object.replace(name.clone());
        next.seq = seq;
        let value = serde_json::to_vec(&next).unwrap_or_default();
        let rev = self.revision.load(Ordering::Acquire);
        match self.kv.update(POINTER_KEY, value.into(), rev).await {
            Ok(new) => {
                self.revision.store(new, Ordering::Release);
                if let Ok(mut c) = self.current.lock() {
                    *c = next;
                }
                if let Some(old) = previous.filter(|o| *o != name) {
                    let _ = self.objects.delete(&old).await;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.objects.delete(&name).await;
                if e.kind() == kv::UpdateErrorKind::WrongLastRevision {
                    Err(SaveError::Fenced)
                } else {
                    Err(SaveError::Other(format!(
                        "cannot write the checkpoint pointer: {e}"
                    )))
                }
            }
        }
    }
}

/// Writes the group's checkpoints off the detection thread, one at a
/// time, as [`CheckpointWriter`] does for the state directory.
pub(crate) struct GroupWriter {
    runtime: tokio::runtime::Handle,
    checkpoints: Arc<Checkpoints>,
    lease: Arc<Lease>,
    busy: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
}

impl GroupWriter {
    pub(crate) fn new(
        runtime: tokio::runtime::Handle,
        checkpoints: Arc<Checkpoints>,
        lease: Arc<Lease>,
    ) -> GroupWriter {
        GroupWriter {
            runtime,
            checkpoints,
            lease,
            busy: Arc::new(AtomicBool::new(false)),
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn send(&self, w: CheckpointWrite) {
        let seq = serde_json::from_slice::<serde_json::Value>(&w.doc)
            .ok()
            .and_then(|d| d["stream"]["seq"].as_u64())
            .unwrap_or(0);
        self.busy.store(true, Ordering::Release);
        let (busy, failed) = (self.busy.clone(), self.failed.clone());
        let (checkpoints, lease) = (self.checkpoints.clone(), self.lease.clone());
        self.runtime.spawn(async move {
            let CheckpointWrite {
                engine,
                engine_file,
                doc,
                ..
            } = w;
            // The snapshot is serialized off the detection thread (and
            // off the runtime's workers).
            let bytes =
                tokio::task::spawn_blocking(move || engine.to_file().map(|e| encode(&doc, &e)))
                    .await;
            let saved = match bytes {
                Ok(Ok(bytes)) => {
                    tokio::time::timeout(
                        WRITE_TIMEOUT,
                        checkpoints.save(&lease, &engine_file, bytes, seq),
                    )
                    .await
                }
                Ok(Err(e)) => Ok(Err(SaveError::Other(format!("engine state: {e}")))),
                Err(e) => Ok(Err(SaveError::Other(format!("engine state: {e}")))),
            };
            match saved {
                Ok(Ok(())) => {
                    if failed.swap(false, Ordering::AcqRel) {
                        tracing::info!("group checkpoint written again; going on");
                    }
                }
                Ok(Err(SaveError::Fenced)) => {
                    tracing::error!(
                        "the group checkpoint was not written: its pointer was claimed by a later holder; this instance is stale and stops detecting"
                    );
                    lease.lose("fenced: the checkpoint pointer was claimed by a later holder");
                    failed.store(true, Ordering::Release);
                }
                Ok(Err(e)) => {
                    tracing::error!("group checkpoint not written: {e}; reading stops until it can be written");
                    failed.store(true, Ordering::Release);
                }
                Err(_) => {
                    tracing::error!("group checkpoint not written within {WRITE_TIMEOUT:?}; reading stops until it can be written");
                    failed.store(true, Ordering::Release);
                }
            }
            busy.store(false, Ordering::Release);
        });
    }
}

/// Where the daemon's checkpoints go: the state directory, or (in a
/// group) the group's object store.
pub(crate) enum Writer {
    Local(CheckpointWriter),
    Group(GroupWriter),
}

impl Writer {
    pub(crate) fn failed(&self) -> bool {
        match self {
            Writer::Local(w) => w.failed(),
            Writer::Group(g) => g.failed.load(Ordering::Acquire),
        }
    }

    pub(crate) fn busy(&self) -> bool {
        match self {
            Writer::Local(w) => w.busy(),
            Writer::Group(g) => g.busy.load(Ordering::Acquire),
        }
    }

    pub(crate) fn send(&self, w: CheckpointWrite) {
        match self {
            Writer::Local(l) => l.send(w),
            Writer::Group(g) => g.send(w),
        }
    }

    pub(crate) fn wait_idle(&self, at_most: Duration) {
        match self {
            Writer::Local(w) => w.wait_idle(at_most),
            Writer::Group(_) => {
                let until = Instant::now() + at_most;
                while self.busy() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_object_is_the_document_a_newline_and_the_engine_file() {
        let (doc, engine) = (br#"{"stream":{"seq":9}}"#, [0, b'\n', 255]);
        let back = decode(encode(doc, &engine)).unwrap();
        assert_eq!(back.doc, doc);
        assert_eq!(back.engine, engine);
        assert!(decode(b"no newline".to_vec()).is_none());
    }

    #[test]
    fn a_pointer_reads_back_with_its_term_and_object() {
        let p = Pointer {
            object: Some("7-engine-2.bin".into()),
            term: 7,
            holder: "h:1:ab".into(),
            consumer: Some("mcpwatch_g_7".into()),
            seq: 1234,
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"object":"7-engine-2.bin","term":7,"holder":"h:1:ab","consumer":"mcpwatch_g_7","seq":1234}"#
        );
        assert_eq!(serde_json::from_str::<Pointer>(&text).unwrap(), p);
    }
}
