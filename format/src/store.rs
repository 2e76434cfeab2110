//! Pair files in object storage (`s3://`, `gs://`, `az://`) through the `object_store` crate:
//! where a location points ([`Location`]), opening a bucket with credentials from the environment
//! only ([`Store`]), finding the pair files under a URL with Hive partitions pruned by a
//! [`TimeWindow`] before they are listed ([`Store::list_pairs`]), fetching them for the
//! file-based reader ([`fetch_inputs`]), and the upload spool writers use ([`Uploader`]).
//!
//! Writers never write to a bucket directly. They write rotated files to a local spool as they
//! would to a local `--out`; each closed file is uploaded whole to its final key and then removed
//! from the spool, so a reader of the bucket only ever sees complete objects (an object exists
//! once its PUT, or the completion of its multipart upload, succeeded). Keys keep the writer's
//! Hive layout and add the writer's run id to the name, so two agents never write the same key
//! and a retried upload rewrites only its own object. The spool has a byte budget: past it, the
//! oldest files not yet uploaded are deleted and counted, never silently.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::reader::{PairFile, TimeWindow};
use crate::writer::{CloseHook, ClosedFile};

/// Object-store URL schemes, by the store that serves them.
const S3: [&str; 2] = ["s3", "s3a"];
const GCS: [&str; 1] = ["gs"];
const AZURE: [&str; 4] = ["az", "azure", "abfs", "abfss"];

/// The first delay after a failed upload; it doubles up to [`BACKOFF_MAX`] and resets after a
/// success.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Files up to this size go up in one PUT; larger ones as a multipart upload of parts this size.
const PART: usize = 16 * 1024 * 1024;

/// Where a pair location points: a local path, or a bucket and a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Store(StoreUrl),
}

impl Location {
    /// Read a location as the user typed it. Text without `://` is a local path; `file://` names
    /// one too; `s3://`, `s3a://`, `gs://`, `az://`, `azure://`, `abfs[s]://` name an object
    /// store. Any other scheme is an error (a path named `ftp:` is never created by mistake).
    pub fn parse(text: &str) -> Result<Self> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let lower = scheme.to_ascii_lowercase();
        if lower == "file" {
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        let kind = if S3.contains(&lower.as_str()) {
            Kind::S3
        } else if GCS.contains(&lower.as_str()) {
            Kind::Gcs
        } else if AZURE.contains(&lower.as_str()) {
            Kind::Azure
        } else {
            return Err(store_error(
                text,
                format!(
                    "uses the `{scheme}` scheme, which shadowdiff cannot read or write: use s3://, gs://, az:// or a local path"
                ),
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(store_error(text, "names no bucket: write it as s3://BUCKET/PREFIX".into()));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(store_error(text, "has a `.` or `..` segment, which object keys cannot hold".into()));
        }
        Ok(Location::Store(StoreUrl { kind, scheme: lower, bucket: bucket.to_owned(), prefix }))
    }

    /// A location that must be a local directory (an output only written locally): an object-store
    /// URL or an unknown scheme is an error naming `flag`.
    pub fn local_only(flag: &str, text: &str, what: &str) -> Result<PathBuf> {
        match Location::parse(text) {
            Ok(Location::Local(p)) => Ok(p),
            Ok(Location::Store(_)) => Err(store_error(
                &format!("{flag} {text}"),
                format!("is an object-store URL; {what} is written to a local directory"),
            )),
            Err(Error::Store { message, .. }) => Err(store_error(&format!("{flag} {text}"), message)),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    S3,
    Gcs,
    Azure,
}

/// A bucket and a prefix in it (which may hold glob characters when it names inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    kind: Kind,
    scheme: String,
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the whole bucket.
    pub prefix: String,
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}/{}", self.scheme, self.bucket, self.prefix)
    }
}

impl StoreUrl {
    /// The part of the prefix before its first segment with a glob character, and whether there
    /// is one.
    fn literal_prefix(&self) -> (String, bool) {
        let parts: Vec<&str> = self.prefix.split('/').filter(|p| !p.is_empty()).collect();
        let first_glob = parts.iter().position(|p| p.contains(['*', '?', '[']));
        let literal = parts[..first_glob.unwrap_or(parts.len())].join("/");
        (literal, first_glob.is_some())
    }
}

fn store_error(location: &str, message: String) -> Error {
    Error::Store { location: location.to_owned(), message }
}

/// An open bucket.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    url: StoreUrl,
}

impl Store {
    /// Open the bucket of `url`. Credentials, region and endpoint come from the environment and
    /// the provider chain only (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, web identity, instance metadata;
    /// `GOOGLE_*`; `AZURE_*`), never from flags. Nothing is sent until the store is used.
    pub fn open(url: &StoreUrl) -> Result<Self> {
        let root = format!("{}://{}", url.scheme, url.bucket);
        // The client's own retries are few and quick: the uploader retries with its own backoff
        // and counts each failed attempt; readers fail fast with a sentence.
        let retry =
            RetryConfig { backoff: BackoffConfig::default(), max_retries: 2, retry_timeout: Duration::from_secs(20) };
        let fail = |e: object_store::Error| store_error(&url.to_string(), format!("cannot be opened: {e}"));
        let inner: Arc<dyn ObjectStore> = match url.kind {
            Kind::S3 => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(root)
                    .with_retry(retry)
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout), "5s")
                    .build()
                    .map_err(fail)?,
            ),
            Kind::Gcs => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(root)
                    .with_retry(retry)
                    .with_config(GoogleConfigKey::Client(ClientConfigKey::ConnectTimeout), "5s")
                    .build()
                    .map_err(fail)?,
            ),
            Kind::Azure => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(root)
                    .with_retry(retry)
                    .with_config(AzureConfigKey::Client(ClientConfigKey::ConnectTimeout), "5s")
                    .build()
                    .map_err(fail)?,
            ),
        };
        Ok(Self { inner, url: url.clone() })
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// One listing of the prefix, so a missing bucket, refused credentials or an unreachable
    /// endpoint fail at start with a sentence rather than at the first upload.
    pub async fn check(&self) -> Result<()> {
        let (literal, _) = self.url.literal_prefix();
        let prefix = key(&self.url, &literal)?;
        self.inner
            .list_with_delimiter((!literal.is_empty()).then_some(&prefix))
            .await
            .map(|_| ())
            .map_err(|e| self.error("cannot be listed", &e))
    }

    fn error(&self, doing: &str, e: &object_store::Error) -> Error {
        store_error(&self.url.to_string(), describe(doing, &self.url, e))
    }

    /// The pair files (`*.parquet`, not hidden or `_`-prefixed) under the URL, in key order. A
    /// glob in the prefix (`*`, `?`, `[..]`, `**`) is matched against whole keys, and a key under
    /// a matching "directory" counts too, as with local globs. Hive partitions (`dt=`, `hour=`)
    /// that cannot hold pairs in `window` are not listed at all.
    pub async fn list_pairs(&self, window: &TimeWindow) -> Result<Vec<ObjectMeta>> {
        let (literal, globbed) = self.url.literal_prefix();
        if !globbed && literal.ends_with(".parquet") {
            match self.inner.head(&key(&self.url, &literal)?).await {
                Ok(meta) => return Ok(vec![meta]),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error("cannot be read", &e)),
            }
        }
        let pattern = if globbed {
            let p = glob::Pattern::new(&self.url.prefix)
                .map_err(|e| Error::BadGlob { pattern: self.url.to_string(), message: e.msg.to_owned() })?;
            Some(p)
        } else {
            None
        };
        let mut found = Vec::new();
        let mut level = vec![(!literal.is_empty()).then(|| key(&self.url, &literal)).transpose()?];
        while !level.is_empty() {
            let listed: Vec<_> = futures_util::stream::iter(level.into_iter().map(|dir| {
                let store = Arc::clone(&self.inner);
                async move { store.list_with_delimiter(dir.as_ref()).await }
            }))
            .buffered(16)
            .try_collect()
            .await
            .map_err(|e| self.error("cannot be listed", &e))?;
            level = Vec::new();
            for result in listed {
                for dir in result.common_prefixes {
                    if !hidden(&dir) && window.may_hold(&Path::new(dir.as_ref()).join("pairs.parquet")) {
                        level.push(Some(dir));
                    }
                }
                found.extend(result.objects.into_iter().filter(|o| {
                    !hidden(&o.location)
                        && o.location.as_ref().ends_with(".parquet")
                        && window.may_hold(Path::new(o.location.as_ref()))
                }));
            }
        }
        if let Some(p) = pattern {
            let options = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
            found.retain(|o| {
                let k = o.location.as_ref();
                p.matches_with(k, options) || k.match_indices('/').any(|(i, _)| p.matches_with(&k[..i], options))
            });
        }
        found.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(found)
    }

    /// Download `objects` under `dir`, each at its key (so Hive partitions stay in the path), and
    /// return their local paths. A file appears under its name only once whole.
    pub async fn download(&self, objects: &[ObjectMeta], dir: &Path) -> Result<Vec<PathBuf>> {
        let jobs = objects.iter().map(|o| {
            let local = dir.join(o.location.as_ref());
            async move { self.download_one(&o.location, &local).await.map(|()| local) }
        });
        futures_util::stream::iter(jobs).buffered(8).try_collect().await
    }

    async fn download_one(&self, key: &Key, local: &Path) -> Result<()> {
        let io = |source| Error::Io { path: local.to_owned(), source };
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let name = local.file_name().and_then(|n| n.to_str()).unwrap_or("pairs.parquet");
        let part = local.with_file_name(format!(".{name}.part"));
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        let mut stream =
            self.inner.get(key).await.map_err(|e| self.error(&format!("cannot read `{key}`"), &e))?.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(&format!("cannot read `{key}`"), &e))?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&part, local).await.map_err(io)
    }

    /// Upload one local file to `key`: one PUT up to [`PART`] bytes, a multipart upload of
    /// [`PART`]-byte parts (four at a time) above. Either way the object is visible only once
    /// complete; a multipart upload that fails is aborted.
    async fn upload(&self, path: &Path, key: &Key) -> std::result::Result<(), String> {
        let read_error = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
        let size = file.metadata().await.map_err(read_error)?.len();
        if size <= PART as u64 {
            let bytes = tokio::fs::read(path).await.map_err(read_error)?;
            return self.inner.put(key, bytes.into()).await.map(|_| ()).map_err(|e| e.to_string());
        }
        let upload = self.inner.put_multipart(key).await.map_err(|e| e.to_string())?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match tokio::io::AsyncReadExt::read(&mut file, &mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = parts.abort().await;
                    return Err(read_error(e));
                }
            };
            if let Err(e) = parts.wait_for_capacity(4).await {
                let _ = parts.abort().await;
                return Err(e.to_string());
            }
            parts.write(&buf[..n]);
        }
        parts.finish().await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// One sentence about a failed store operation, naming the usual causes by what the store said.
fn describe(doing: &str, url: &StoreUrl, e: &object_store::Error) -> String {
    use object_store::Error as E;
    let env = match url.kind {
        Kind::S3 => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the provider chain",
        Kind::Gcs => "GOOGLE_APPLICATION_CREDENTIALS or the provider chain",
        Kind::Azure => "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY, or the provider chain",
    };
    let text = e.to_string();
    let cause = match e {
        E::NotFound { .. } => format!("the bucket `{}` does not exist", url.bucket),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            format!("the store refused the credentials from the environment ({env})")
        }
        _ if text.contains("NoSuchBucket") => format!("the bucket `{}` does not exist", url.bucket),
        _ if ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"]
            .iter()
            .any(|c| text.contains(c)) =>
        {
            format!("the store refused the credentials from the environment ({env})")
        }
        _ => "the store could not be reached or failed".to_owned(),
    };
    format!("{doing}: {cause} ({})", one_line(&text))
}

fn one_line(text: &str) -> String {
    let t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.chars().count() > 400 { format!("{}…", t.chars().take(400).collect::<String>()) } else { t }
}

fn key(url: &StoreUrl, text: &str) -> Result<Key> {
    Key::parse(text).map_err(|e| store_error(&url.to_string(), format!("has a key that cannot be used: {e}")))
}

fn hidden(k: &Key) -> bool {
    k.filename().is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

/// Inputs as the file-based reader takes them: each object-store URL is listed (partitions
/// outside `window` pruned before listing) and its pair files downloaded into a directory of
/// its own under `scratch`, which replaces it; local inputs pass through unchanged. Runs its own
/// small runtime: call it outside any async context.
pub fn fetch_inputs(inputs: &[String], window: &TimeWindow, scratch: &Path) -> Result<Vec<String>> {
    if !inputs.iter().any(|i| matches!(Location::parse(i), Ok(Location::Store(_)) | Err(_))) {
        return Ok(inputs.to_vec());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Io { path: scratch.to_owned(), source })?;
    runtime.block_on(async {
        let mut out = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            match Location::parse(input)? {
                Location::Local(_) => out.push(input.clone()),
                Location::Store(url) => {
                    let store = Store::open(&url)?;
                    let objects = store.list_pairs(window).await?;
                    if objects.is_empty() {
                        return Err(Error::NoPairFiles { input: input.clone() });
                    }
                    let dir = scratch.join(format!("{i}"));
                    let files = store.download(&objects, &dir).await?;
                    // Checked here, so that a damaged object is named by its URL, not by the
                    // scratch path it was fetched to.
                    for (file, object) in files.iter().zip(&objects) {
                        if let Err(e) = PairFile::open(file) {
                            let remote = format!("{}://{}/{}", url.scheme, url.bucket, object.location);
                            return Err(renamed(e, Path::new(&remote)));
                        }
                    }
                    let bytes: u64 = objects.iter().map(|o| o.size).sum();
                    tracing::info!(url = %url, files = files.len(), bytes, "Fetched pair files.");
                    out.push(dir.to_string_lossy().into_owned());
                }
            }
        }
        Ok(out)
    })
}

/// `e` about a fetched file, with its path replaced by the object's URL.
fn renamed(e: Error, remote: &Path) -> Error {
    let path = remote.to_owned();
    match e {
        Error::EmptyFile { .. } => Error::EmptyFile { path },
        Error::NotParquet { .. } => Error::NotParquet { path },
        Error::Truncated { .. } => Error::Truncated { path },
        Error::Corrupt { source, .. } => Error::Corrupt { path, source },
        Error::SchemaMismatch { column, expected, found, .. } => {
            Error::SchemaMismatch { path, column, expected, found }
        }
        Error::NewerSchemaVersion { found, supported, .. } => Error::NewerSchemaVersion { path, found, supported },
        Error::BadMetadata { key, message, .. } => Error::BadMetadata { path, key, message },
        Error::Io { source, .. } => Error::Io { path, source },
        other => other,
    }
}

/// How a writer's spool uploads to a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadSettings {
    pub url: StoreUrl,
    /// Where closed files wait for their upload.
    pub spool: PathBuf,
    /// Bytes of closed files the spool may hold; past it the oldest not yet uploaded are deleted
    /// and counted. `None`: no budget.
    pub max_spool: Option<u64>,
    /// How long shutdown keeps uploading; what is left stays in the spool.
    pub drain_timeout: Duration,
}

/// The default spool of an agent: `<system temp>/shadowdiff-spool/<agent>`.
pub fn default_spool(agent: &str) -> PathBuf {
    let name: String = agent
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' })
        .collect();
    std::env::temp_dir().join("shadowdiff-spool").join(name.trim_start_matches('.'))
}

/// What the uploader has done, for metrics and file metadata. Counters only grow; the `spool_*`
/// fields are gauges of what waits now.
#[derive(Debug, Default)]
pub struct UploadStats {
    pub files_uploaded: AtomicU64,
    pub pairs_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    /// Upload attempts that failed (each is retried after a backoff).
    pub upload_failures: AtomicU64,
    /// Files deleted from the spool unuploaded to keep it within its budget, and their pairs.
    pub dropped_files: AtomicU64,
    pub dropped_pairs: AtomicU64,
    pub dropped_bytes: AtomicU64,
    pub spool_files: AtomicU64,
    pub spool_pairs: AtomicU64,
    pub spool_bytes: AtomicU64,
}

impl UploadStats {
    /// The counters by name, as writers store them in file metadata (gauges left out).
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, u64> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("upload.files", load(&self.files_uploaded)),
            ("upload.pairs", load(&self.pairs_uploaded)),
            ("upload.bytes", load(&self.bytes_uploaded)),
            ("upload.failures", load(&self.upload_failures)),
            ("spool.dropped_files", load(&self.dropped_files)),
            ("spool.dropped_pairs", load(&self.dropped_pairs)),
            ("spool.dropped_bytes", load(&self.dropped_bytes)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// A file waiting in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub path: PathBuf,
    key: Key,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Spooled>,
    /// The file being uploaded now: never dropped by the budget mid-upload.
    uploading: Option<PathBuf>,
    bytes: u64,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    stats: Arc<UploadStats>,
    store: Store,
    settings: UploadSettings,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, s: &State) {
        self.stats.spool_files.store(s.queue.len() as u64, Ordering::Relaxed);
        self.stats.spool_pairs.store(s.queue.iter().map(|e| e.rows).sum(), Ordering::Relaxed);
        self.stats.spool_bytes.store(s.bytes, Ordering::Relaxed);
    }

    /// Queue a closed file, then keep the spool within its budget.
    fn enqueue(&self, file: Spooled) {
        let mut s = self.lock();
        s.bytes += file.bytes;
        s.queue.push_back(file);
        self.enforce_budget(&mut s);
        self.publish(&s);
        drop(s);
        self.wake.notify_one();
    }

    /// Delete the oldest files not being uploaded until the spool fits its budget. Each is
    /// counted, with its pairs, and logged: data was lost.
    fn enforce_budget(&self, s: &mut State) {
        let Some(max) = self.settings.max_spool else {
            return;
        };
        while s.bytes > max {
            let Some(i) = s.queue.iter().position(|e| s.uploading.as_ref() != Some(&e.path)) else {
                break;
            };
            let Some(victim) = s.queue.remove(i) else {
                break;
            };
            s.bytes -= victim.bytes;
            if let Err(error) = std::fs::remove_file(&victim.path) {
                tracing::error!(file = %victim.path.display(), %error, "Cannot delete a dropped spool file.");
            }
            self.stats.dropped_files.fetch_add(1, Ordering::Relaxed);
            self.stats.dropped_pairs.fetch_add(victim.rows, Ordering::Relaxed);
            self.stats.dropped_bytes.fetch_add(victim.bytes, Ordering::Relaxed);
            tracing::error!(
                file = %victim.path.display(),
                pairs = victim.rows,
                bytes = victim.bytes,
                max_spool = max,
                "The spool is over --max-spool: the oldest file not yet uploaded was deleted."
            );
        }
    }
}

/// Uploads the files a writer closes, oldest first, one at a time, retrying each with backoff.
pub struct Uploader {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader").field("url", &self.shared.settings.url.to_string()).finish_non_exhaustive()
    }
}

/// What shutdown left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub spool: PathBuf,
    /// Files still in the spool, not uploaded.
    pub left: Vec<Spooled>,
}

impl DrainReport {
    pub fn left_pairs(&self) -> u64 {
        self.left.iter().map(|f| f.rows).sum()
    }
}

impl Uploader {
    /// Create the spool, queue the files an earlier run left in it (complete `*.parquet`
    /// files; hidden temporaries of a killed writer are not pair files), and start uploading in
    /// a task of the current runtime.
    pub fn start(store: Store, settings: UploadSettings, stats: Arc<UploadStats>) -> Result<Self> {
        std::fs::create_dir_all(&settings.spool).map_err(|e| {
            store_error(&settings.spool.display().to_string(), format!("cannot be created as the upload spool: {e}"))
        })?;
        let leftovers = crate::reader::resolve_inputs(&[settings.spool.to_string_lossy()]).unwrap_or_default();
        let shared =
            Arc::new(Shared { state: Mutex::default(), wake: tokio::sync::Notify::new(), stats, store, settings });
        for path in leftovers {
            match PairFile::open(&path) {
                Ok(f) => {
                    let run_id = f.info.run_id.clone().unwrap_or_else(|| "unknown".into());
                    let closed = ClosedFile { rows: f.info.rows, bytes: f.info.size_bytes, path, run_id };
                    match spooled(&shared.settings, &closed) {
                        Ok(s) => {
                            tracing::info!(file = %s.path.display(), pairs = s.rows, "Uploading a file an earlier run left in the spool.");
                            shared.enqueue(s);
                        }
                        Err(error) => tracing::error!(%error, "A file in the spool cannot be uploaded."),
                    }
                }
                Err(error) => {
                    tracing::error!(file = %path.display(), %error, "A file in the spool is not a pair file; left there.");
                }
            }
        }
        let task = tokio::spawn(upload_loop(Arc::clone(&shared)));
        Ok(Self { shared, task })
    }

    /// The writer's hook: queue each closed file. Never blocks on the network.
    pub fn hook(&self) -> CloseHook {
        let shared = Arc::clone(&self.shared);
        Arc::new(move |file: &ClosedFile| match spooled(&shared.settings, file) {
            Ok(s) => shared.enqueue(s),
            Err(error) => tracing::error!(%error, file = %file.path.display(), "A closed file cannot be uploaded."),
        })
    }

    pub fn stats(&self) -> &Arc<UploadStats> {
        &self.shared.stats
    }

    /// After the writer closed its last file: keep uploading until the spool is empty or the
    /// drain deadline passes. What is left stays in the spool (a later run with the same spool
    /// uploads it) and is reported.
    pub async fn finish(mut self) -> DrainReport {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        let deadline = self.shared.settings.drain_timeout;
        if tokio::time::timeout(deadline, &mut self.task).await.is_err() {
            // An upload cut here never completes, so it never becomes visible.
            self.task.abort();
            let _ = (&mut self.task).await;
        }
        let mut s = self.shared.lock();
        s.uploading = None;
        self.shared.publish(&s);
        let report = DrainReport { spool: self.shared.settings.spool.clone(), left: s.queue.iter().cloned().collect() };
        if !report.left.is_empty() {
            tracing::error!(
                files = report.left.len(),
                pairs = report.left_pairs(),
                spool = %report.spool.display(),
                url = %self.shared.settings.url,
                "Files not uploaded by the drain deadline stay in the spool."
            );
        }
        report
    }
}

fn spooled(settings: &UploadSettings, file: &ClosedFile) -> Result<Spooled> {
    let rel = file.path.strip_prefix(&settings.spool).unwrap_or(&file.path);
    let stem = rel.file_stem().and_then(|s| s.to_str()).unwrap_or("pairs");
    let name = format!("{stem}-{}.parquet", file.run_id);
    let parent: Vec<String> = rel
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let full: Vec<&str> = std::iter::once(settings.url.prefix.as_str())
        .filter(|p| !p.is_empty())
        .chain(parent.iter().map(String::as_str))
        .chain([name.as_str()])
        .collect();
    Ok(Spooled {
        path: file.path.clone(),
        key: key(&settings.url, &full.join("/"))?,
        rows: file.rows,
        bytes: file.bytes,
    })
}

async fn upload_loop(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_START;
    loop {
        let next = {
            let mut s = shared.lock();
            match s.queue.front().cloned() {
                Some(e) => {
                    s.uploading = Some(e.path.clone());
                    Some(e)
                }
                None if s.closed => return,
                None => None,
            }
        };
        let Some(entry) = next else {
            shared.wake.notified().await;
            continue;
        };
        // On a task of its own, so that even a panic in the client is a counted, retried failure.
        let (store, path, key) = (shared.store.clone(), entry.path.clone(), entry.key.clone());
        let result = tokio::spawn(async move { store.upload(&path, &key).await })
            .await
            .unwrap_or_else(|e| Err(format!("the upload task failed: {e}")));
        match result {
            Ok(()) => {
                backoff = BACKOFF_START;
                if let Err(error) = tokio::fs::remove_file(&entry.path).await {
                    tracing::warn!(file = %entry.path.display(), %error, "Cannot delete an uploaded spool file.");
                }
                let stats = &shared.stats;
                stats.files_uploaded.fetch_add(1, Ordering::Relaxed);
                stats.pairs_uploaded.fetch_add(entry.rows, Ordering::Relaxed);
                stats.bytes_uploaded.fetch_add(entry.bytes, Ordering::Relaxed);
                let mut s = shared.lock();
                s.uploading = None;
                if let Some(i) = s.queue.iter().position(|e| e.path == entry.path) {
                    s.queue.remove(i);
                    s.bytes -= entry.bytes;
                }
                shared.publish(&s);
                tracing::debug!(key = %entry.key, pairs = entry.rows, "Uploaded a pair file.");
            }
            Err(error) => {
                shared.stats.upload_failures.fetch_add(1, Ordering::Relaxed);
                {
                    let mut s = shared.lock();
                    s.uploading = None;
                    // A budget passed while this file was uploading applies now.
                    shared.enforce_budget(&mut s);
                    shared.publish(&s);
                }
                tracing::warn!(
                    file = %entry.path.display(),
                    url = %shared.settings.url,
                    error = %one_line(&error),
                    retry_in_ms = backoff.as_millis() as u64,
                    "Upload failed; it will be retried."
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> StoreUrl {
        match Location::parse(text).expect("parses") {
            Location::Store(u) => u,
            Location::Local(p) => panic!("{text} read as local {}", p.display()),
        }
    }

    #[test]
    fn locations_are_told_apart_by_scheme() {
        assert_eq!(Location::parse("out/pairs").expect("local"), Location::Local("out/pairs".into()));
        assert_eq!(Location::parse("file:///tmp/x").expect("file"), Location::Local("/tmp/x".into()));
        let u = url("s3://bkt/a/b/");
        assert_eq!((u.bucket.as_str(), u.prefix.as_str(), u.to_string().as_str()), ("bkt", "a/b", "s3://bkt/a/b"));
        assert_eq!(url("gs://b").prefix, "");
        assert_eq!(url("az://c/p").kind, Kind::Azure);
        let e = Location::parse("ftp://host/x").expect_err("unknown scheme");
        assert_eq!(
            e.to_string(),
            "ftp://host/x uses the `ftp` scheme, which shadowdiff cannot read or write: use s3://, gs://, az:// or a local path"
        );
        assert!(Location::parse("s3:///x").expect_err("no bucket").to_string().contains("names no bucket"));
        assert!(Location::parse("s3://b/a/../c").is_err());
        let e = Location::local_only("--out", "s3://b/x", "the analysis").expect_err("not local");
        assert_eq!(
            e.to_string(),
            "--out s3://b/x is an object-store URL; the analysis is written to a local directory"
        );
    }

    #[test]
    fn globs_split_the_prefix_where_they_start() {
        assert_eq!(url("s3://b/pairs/dt=*/hour=1?").literal_prefix(), ("pairs".to_owned(), true));
        assert_eq!(url("s3://b/pairs/dt=2026-11-30").literal_prefix(), ("pairs/dt=2026-11-30".to_owned(), false));
        assert_eq!(url("s3://b/**/*.parquet").literal_prefix(), (String::new(), true));
    }

    #[test]
    fn keys_keep_the_partitions_and_carry_the_run_id() {
        let settings = UploadSettings {
            url: url("s3://b/team/pairs"),
            spool: "/spool".into(),
            max_spool: None,
            drain_timeout: Duration::from_secs(1),
        };
        let file = ClosedFile {
            path: "/spool/dt=2026-11-30/hour=09/cap-20261130T090000.000Z-000003.parquet".into(),
            rows: 5,
            bytes: 10,
            run_id: "01JRUN".into(),
        };
        let s = spooled(&settings, &file).expect("key");
        assert_eq!(s.key.as_ref(), "team/pairs/dt=2026-11-30/hour=09/cap-20261130T090000.000Z-000003-01JRUN.parquet");
    }
}

/// Whole files at a location that is a local path or an object-store URL: what a sharded
/// analysis moves around (the plan, each shard's partial, the shards' pair files). Each call runs
/// its own small runtime: call them outside any async context.
pub mod files {
    use super::*;

    fn runtime(location: &str) -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Io { path: PathBuf::from(location), source })
    }

    fn open(url: &StoreUrl, path: &str) -> Result<(Store, Key)> {
        let store = Store::open(url)?;
        let k = key(url, path)?;
        Ok((store, k))
    }

    /// Creates the directory `path` goes in.
    fn make_parent(path: &Path) -> Result<()> {
        match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source }),
            None => Ok(()),
        }
    }

    /// `location` joined with a relative `name` (`/` between).
    pub fn join(location: &str, name: &str) -> String {
        format!("{}/{}", location.trim_end_matches('/'), name.trim_start_matches('/'))
    }

    /// The bytes of the file at `location`; `Ok(None)` when there is none.
    pub fn read(location: &str) -> Result<Option<Vec<u8>>> {
        match Location::parse(location)? {
            Location::Local(path) => match std::fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(Error::Io { path, source }),
            },
            Location::Store(url) => {
                let (store, k) = open(&url, &url.prefix)?;
                runtime(location)?.block_on(async {
                    match store.inner.get(&k).await {
                        Ok(got) => {
                            got.bytes().await.map(|b| Some(b.to_vec())).map_err(|e| store.error("cannot be read", &e))
                        }
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(store.error("cannot be read", &e)),
                    }
                })
            }
        }
    }

    /// Writes `bytes` as the file at `location`, whole or not at all (a local file is renamed
    /// into place; an object exists once its PUT succeeded).
    pub fn write(location: &str, bytes: &[u8]) -> Result<()> {
        match Location::parse(location)? {
            Location::Local(path) => {
                make_parent(&path)?;
                crate::atomic::write_atomic(&path, bytes).map_err(|source| Error::Io { path, source })
            }
            Location::Store(url) => {
                let (store, k) = open(&url, &url.prefix)?;
                let payload = bytes.to_vec();
                runtime(location)?.block_on(async {
                    store
                        .inner
                        .put(&k, payload.into())
                        .await
                        .map(|_| ())
                        .map_err(|e| store.error("cannot be written", &e))
                })
            }
        }
    }

    /// Copies the local file `from` to `location` (an upload for an object store).
    pub fn put(from: &Path, location: &str) -> Result<()> {
        match Location::parse(location)? {
            Location::Local(path) => {
                make_parent(&path)?;
                let part = path.with_extension("part");
                std::fs::copy(from, &part).map_err(|source| Error::Io { path: part.clone(), source })?;
                std::fs::rename(&part, &path).map_err(|source| Error::Io { path, source })
            }
            Location::Store(url) => {
                let (store, k) = open(&url, &url.prefix)?;
                runtime(location)?.block_on(async {
                    store
                        .upload(from, &k)
                        .await
                        .map_err(|message| store_error(location, format!("cannot be written: {message}")))
                })
            }
        }
    }

    /// Copies the file at `location` to the local path `to` (a download for an object store),
    /// whole: it appears under its name only once complete.
    pub fn get(location: &str, to: &Path) -> Result<()> {
        match Location::parse(location)? {
            Location::Local(path) => {
                let part = to.with_extension("part");
                make_parent(to)?;
                std::fs::copy(&path, &part).map_err(|source| Error::Io { path: path.clone(), source })?;
                std::fs::rename(&part, to).map_err(|source| Error::Io { path: to.to_owned(), source })
            }
            Location::Store(url) => {
                let (store, k) = open(&url, &url.prefix)?;
                runtime(location)?.block_on(store.download_one(&k, to))
            }
        }
    }

    /// Downloads many files (eight at a time for an object store) to their local paths.
    pub fn get_all(pairs: &[(String, PathBuf)]) -> Result<()> {
        let Some((first, _)) = pairs.first() else { return Ok(()) };
        let remote: Vec<(StoreUrl, &PathBuf)> = pairs
            .iter()
            .filter_map(|(l, p)| match Location::parse(l) {
                Ok(Location::Store(u)) => Some((u, p)),
                _ => None,
            })
            .collect();
        for (l, p) in pairs {
            if !matches!(Location::parse(l)?, Location::Store(_)) {
                get(l, p)?;
            }
        }
        if remote.is_empty() {
            return Ok(());
        }
        runtime(first)?.block_on(async {
            let jobs = remote.iter().map(|(url, to)| async move {
                let (store, k) = open(url, &url.prefix)?;
                store.download_one(&k, to).await
            });
            futures_util::stream::iter(jobs).buffered(8).try_collect::<Vec<()>>().await.map(|_| ())
        })
    }

    /// [`get_all`] for pair files: each download is then opened as one, and a damaged file is
    /// an error naming its location (not the local copy).
    pub fn get_pair_files(pairs: &[(String, PathBuf)]) -> Result<()> {
        get_all(pairs)?;
        for (location, local) in pairs {
            if let Err(e) = PairFile::open(local) {
                return Err(renamed(e, Path::new(location)));
            }
        }
        Ok(())
    }

    /// Every file under the directory or prefix `location`, as (path relative to it, size), in
    /// name order. A missing directory or an empty prefix is an empty list.
    pub fn list(location: &str) -> Result<Vec<(String, u64)>> {
        match Location::parse(location)? {
            Location::Local(dir) => {
                let mut out = Vec::new();
                let mut stack = vec![dir.clone()];
                while let Some(d) = stack.pop() {
                    let entries = match std::fs::read_dir(&d) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(source) => return Err(Error::Io { path: d, source }),
                    };
                    for entry in entries {
                        let entry = entry.map_err(|source| Error::Io { path: d.clone(), source })?;
                        let path = entry.path();
                        let meta = entry.metadata().map_err(|source| Error::Io { path: path.clone(), source })?;
                        if meta.is_dir() {
                            stack.push(path);
                        } else if let Ok(rel) = path.strip_prefix(&dir) {
                            out.push((rel.to_string_lossy().replace('\\', "/"), meta.len()));
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
            Location::Store(url) => {
                let store = Store::open(&url)?;
                let prefix = (!url.prefix.is_empty()).then(|| key(&url, &url.prefix)).transpose()?;
                runtime(location)?.block_on(async {
                    let listed: Vec<ObjectMeta> = store
                        .inner
                        .list(prefix.as_ref())
                        .try_collect()
                        .await
                        .map_err(|e| store.error("cannot be listed", &e))?;
                    let base = url.prefix.trim_end_matches('/');
                    let mut out: Vec<(String, u64)> = listed
                        .into_iter()
                        .filter_map(|o| {
                            let k = o.location.as_ref();
                            let rel = if base.is_empty() { Some(k) } else { k.strip_prefix(base)?.strip_prefix('/') };
                            rel.map(|r| (r.to_owned(), o.size))
                        })
                        .collect();
                    out.sort();
                    Ok(out)
                })
            }
        }
    }

    /// The pair files an input names, as locations with their sizes, in order: a local input's
    /// files (directories searched, globs expanded), an object-store input's objects (partitions
    /// outside `window` never listed). An input with none is an error naming it.
    pub fn pair_files(inputs: &[String], window: &TimeWindow) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for input in inputs {
            match Location::parse(input)? {
                Location::Local(_) => {
                    for path in crate::reader::resolve_inputs(std::slice::from_ref(input))? {
                        let size =
                            std::fs::metadata(&path).map_err(|source| Error::Io { path: path.clone(), source })?.len();
                        out.push((path.to_string_lossy().into_owned(), size));
                    }
                }
                Location::Store(url) => {
                    let store = Store::open(&url)?;
                    let objects = runtime(input)?.block_on(store.list_pairs(window))?;
                    if objects.is_empty() {
                        return Err(Error::NoPairFiles { input: input.clone() });
                    }
                    out.extend(
                        objects
                            .into_iter()
                            .map(|o| (format!("{}://{}/{}", url.scheme, url.bucket, o.location), o.size)),
                    );
                }
            }
        }
        Ok(out)
    }
}
