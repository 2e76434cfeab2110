//! The baseline's gRPC descriptors, asked of its server reflection
//! (`grpc.reflection.v1.ServerReflection`, else the older `v1alpha` that grpcio and many servers
//! still offer alone), so that pair files carry the schema their messages were written with and
//! analyze can diff them by field name without being given a descriptor set.
//!
//! One bidirectional call per round: the requests go in one body, the answers come back in order.
//! Round one lists the services; round two asks for the file that defines each (a server answers
//! with that file and usually the files it imports); further rounds ask by name for any imported
//! file still missing, up to [`MAX_ROUNDS`]. The files are put in dependency order (a pool reads a
//! file only after its imports) and returned as one `FileDescriptorSet`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use shadowdiff_format::MetadataSource;
use shadowdiff_format::schema::meta;

use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, header};
use prost::Message as _;
use tokio::time::Instant;

use crate::body::ProxyBody;
use crate::upstream::Upstream;

/// Rounds of asking for missing imports before giving up on them.
pub const MAX_ROUNDS: usize = 6;
/// The largest answer read (all of a round's descriptor files).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// `ServerReflectionRequest` (the same message in v1 and v1alpha).
#[derive(Clone, PartialEq, prost::Message)]
struct ReflectionRequest {
    #[prost(string, tag = "1")]
    host: String,
    #[prost(oneof = "Ask", tags = "3, 4, 7")]
    ask: Option<Ask>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Ask {
    #[prost(string, tag = "3")]
    FileByFilename(String),
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
    #[prost(string, tag = "7")]
    ListServices(String),
}

/// `ServerReflectionResponse`, the parts read.
#[derive(Clone, PartialEq, prost::Message)]
struct ReflectionResponse {
    #[prost(oneof = "Answer", tags = "4, 6, 7")]
    answer: Option<Answer>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Answer {
    #[prost(message, tag = "4")]
    Files(FileDescriptorResponse),
    #[prost(message, tag = "6")]
    Services(ListServiceResponse),
    #[prost(message, tag = "7")]
    Error(ErrorResponse),
}

#[derive(Clone, PartialEq, prost::Message)]
struct FileDescriptorResponse {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file_descriptor_proto: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListServiceResponse {
    #[prost(message, repeated, tag = "1")]
    service: Vec<ServiceResponse>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ServiceResponse {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ErrorResponse {
    #[prost(int32, tag = "1")]
    error_code: i32,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// The head of a `FileDescriptorProto`: its name and imports (the rest is kept as bytes).
#[derive(Clone, PartialEq, prost::Message)]
struct FileHead {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, repeated, tag = "3")]
    dependency: Vec<String>,
}

/// `google.protobuf.FileDescriptorSet`, each file kept as the bytes the server sent.
#[derive(Clone, PartialEq, prost::Message)]
struct FileDescriptorSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}

/// What reflection gave: a `FileDescriptorSet` and the services it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptors {
    pub set: Bytes,
    pub services: Vec<String>,
    pub files: usize,
}

/// What capture learnt of the baseline by reflection, as pair-file metadata: empty until (and
/// unless) the baseline answers. Shared by the proxy, which asks on the first gRPC call, and the
/// writer, which stores it in every file it closes after.
#[derive(Default)]
pub struct Learnt {
    asked: AtomicBool,
    metadata: Mutex<Vec<(String, String)>>,
}

impl Learnt {
    /// The writer's view: the metadata learnt so far.
    pub fn source(self: &Arc<Self>) -> MetadataSource {
        let me = Arc::clone(self);
        Arc::new(move || me.metadata.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    /// On the first call only: asks `baseline` in a task of its own (the client's call is not
    /// held up), and keeps what it answers. A baseline without reflection is logged once at INFO:
    /// nothing is lost, messages are then decoded by a descriptor set or the wire format.
    pub fn ask_once(self: &Arc<Self>, baseline: &Upstream, timeout: Duration) {
        // Every gRPC call comes here: a load, so that after the first call the flag's cache line
        // is only read, never written, by the proxy's threads.
        if self.asked.load(Ordering::Relaxed) || self.asked.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = Arc::clone(self);
        let baseline = baseline.clone();
        tokio::spawn(async move {
            let target = baseline.target().to_string();
            match fetch(&baseline, timeout).await {
                Ok(d) => {
                    tracing::info!(
                        side = "baseline",
                        %target,
                        services = %d.services.join(" "),
                        files = d.files,
                        "Recorded the baseline's gRPC descriptors (server reflection)."
                    );
                    let set = base64::engine::general_purpose::STANDARD.encode(&d.set);
                    *me.metadata.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = vec![
                        (meta::GRPC_DESCRIPTORS.to_owned(), set),
                        (meta::GRPC_DESCRIPTORS_FROM.to_owned(), format!("reflection of the baseline {target}")),
                    ];
                }
                Err(why) => {
                    tracing::info!(side = "baseline", %target, reason = %why, "No gRPC descriptors by reflection.")
                }
            }
        });
    }
}

/// Asks `upstream` for the descriptors of every service it offers (reflection's own left out).
/// `Err` says why not, as a sentence fragment (`it offers no server reflection (grpc-status 12)`).
pub async fn fetch(upstream: &Upstream, timeout: Duration) -> Result<Descriptors, String> {
    let mut last = String::new();
    for path in [V1, V1ALPHA] {
        match fetch_from(upstream, path, timeout).await {
            Ok(d) => return Ok(d),
            Err(Refused::Unimplemented(why)) => last = why,
            Err(Refused::Failed(why)) => return Err(why),
        }
    }
    Err(last)
}

enum Refused {
    /// The service is not there: try the other version.
    Unimplemented(String),
    Failed(String),
}

async fn fetch_from(upstream: &Upstream, path: &str, timeout: Duration) -> Result<Descriptors, Refused> {
    let host = upstream.target().to_string();
    let listed = round(upstream, path, timeout, vec![Ask::ListServices(String::new())]).await?;
    let services: Vec<String> = listed
        .into_iter()
        .filter_map(|a| match a {
            Answer::Services(s) => Some(s.service.into_iter().map(|s| s.name)),
            _ => None,
        })
        .flatten()
        .filter(|s| !s.starts_with("grpc.reflection."))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if services.is_empty() {
        return Err(Refused::Failed(format!("{host} lists no service but reflection")));
    }
    let mut files: BTreeMap<String, (FileHead, Vec<u8>)> = BTreeMap::new();
    let mut asks: Vec<Ask> = services.iter().cloned().map(Ask::FileContainingSymbol).collect();
    for _ in 0..MAX_ROUNDS {
        if asks.is_empty() {
            break;
        }
        for answer in round(upstream, path, timeout, std::mem::take(&mut asks)).await? {
            if let Answer::Files(f) = answer {
                for bytes in f.file_descriptor_proto {
                    let head = FileHead::decode(bytes.as_slice())
                        .map_err(|e| Refused::Failed(format!("{host} sent a descriptor that does not decode: {e}")))?;
                    files.entry(head.name.clone()).or_insert((head, bytes));
                }
            }
        }
        let missing: BTreeSet<&String> =
            files.values().flat_map(|(h, _)| &h.dependency).filter(|d| !files.contains_key(*d)).collect();
        asks = missing.into_iter().cloned().map(Ask::FileByFilename).collect();
    }
    if !asks.is_empty() {
        return Err(Refused::Failed(format!("{host} did not send {} imported descriptor file(s)", asks.len())));
    }
    let count = files.len();
    let set = FileDescriptorSet { file: dependency_order(files) }.encode_to_vec();
    Ok(Descriptors { set: Bytes::from(set), services, files: count })
}

/// Every file after the files it imports.
fn dependency_order(mut files: BTreeMap<String, (FileHead, Vec<u8>)>) -> Vec<Vec<u8>> {
    fn visit(name: &str, files: &mut BTreeMap<String, (FileHead, Vec<u8>)>, out: &mut Vec<Vec<u8>>) {
        // Taken out as it is visited: a file is placed once, and an import cycle ends.
        let Some((head, bytes)) = files.remove(name) else { return };
        for d in &head.dependency {
            visit(d, files, out);
        }
        out.push(bytes);
    }
    let mut out = Vec::with_capacity(files.len());
    while let Some(name) = files.keys().next().cloned() {
        visit(&name, &mut files, &mut out);
    }
    out
}

/// One call: every ask in one request body, every answer in order.
async fn round(upstream: &Upstream, path: &str, timeout: Duration, asks: Vec<Ask>) -> Result<Vec<Answer>, Refused> {
    let host = upstream.target().to_string();
    let mut body = BytesMut::new();
    for ask in asks {
        let m = ReflectionRequest { host: String::new(), ask: Some(ask) }.encode_to_vec();
        body.put_u8(0);
        body.put_u32(u32::try_from(m.len()).unwrap_or(u32::MAX));
        body.put_slice(&m);
    }
    let uri = upstream.uri_for(path).map_err(|e| Refused::Failed(format!("{host}: {e}")))?;
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .body(ProxyBody::full(body.freeze()))
        .map_err(|e| Refused::Failed(format!("{host}: {e}")))?;
    let h = req.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(header::TE, HeaderValue::from_static("trailers"));
    let side = upstream.exchange(req, timeout, MAX_ANSWER, Instant::now()).await;
    if let Some(error) = &side.error {
        return Err(Refused::Failed(format!("{host} did not answer the reflection call ({error})")));
    }
    let status = side.status.unwrap_or_default();
    let grpc_status = side
        .headers
        .iter()
        .chain(&side.trailers)
        .find(|h| h.name.eq_ignore_ascii_case("grpc-status"))
        .map(|h| String::from_utf8_lossy(&h.value).trim().to_owned());
    match (status, grpc_status.as_deref()) {
        (200, Some("0")) => {}
        // UNIMPLEMENTED: no such service. A proxy or HTTP server may answer 404 or 415 instead.
        (200, Some("12")) | (404 | 405 | 415, _) => {
            let why = grpc_status.map_or(format!("HTTP {status}"), |s| format!("grpc-status {s}"));
            return Err(Refused::Unimplemented(format!("{host} offers no server reflection ({why})")));
        }
        (s, g) => {
            return Err(Refused::Failed(format!(
                "{host} failed the reflection call (HTTP {s}, grpc-status {})",
                g.unwrap_or("missing")
            )));
        }
    }
    if side.body_truncated {
        return Err(Refused::Failed(format!("{host} answered reflection with more than {MAX_ANSWER} bytes")));
    }
    let mut rest: &[u8] = side.body.as_deref().unwrap_or_default();
    let mut answers = Vec::new();
    while !rest.is_empty() {
        let cut = || Refused::Failed(format!("{host} sent a cut reflection answer"));
        if rest.len() < 5 || rest[0] != 0 {
            return Err(cut());
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let message = rest.get(5..5 + len).ok_or_else(cut)?;
        let answer = ReflectionResponse::decode(message)
            .map_err(|e| Refused::Failed(format!("{host} sent a reflection answer that does not decode: {e}")))?;
        match answer.answer {
            Some(Answer::Error(e)) => {
                // A file or symbol the server does not know: the others may still come.
                tracing::debug!(target = %host, code = e.error_code, message = %e.error_message, "Reflection refused one request.");
            }
            Some(a) => answers.push(a),
            None => {}
        }
        rest = &rest[5 + len..];
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, deps: &[&str]) -> (String, (FileHead, Vec<u8>)) {
        let head = FileHead { name: name.into(), dependency: deps.iter().map(|d| (*d).to_owned()).collect() };
        let bytes = head.encode_to_vec();
        (name.to_owned(), (head, bytes))
    }

    #[test]
    fn files_come_after_their_imports() {
        let files: BTreeMap<_, _> =
            [file("a.proto", &["z.proto", "m.proto"]), file("m.proto", &["z.proto"]), file("z.proto", &[])].into();
        let order: Vec<String> =
            dependency_order(files).into_iter().map(|b| FileHead::decode(b.as_slice()).expect("head").name).collect();
        assert_eq!(order, ["z.proto", "m.proto", "a.proto"]);
    }
}
