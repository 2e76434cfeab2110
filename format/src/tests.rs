//! Writer and reader together, on real files in a temporary directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::error::Error;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).single().expect("valid") + chrono::TimeDelta::seconds(secs)
}

fn record(i: u64, when: DateTime<Utc>) -> PairRecord {
    let mut r = PairRecord::new(
        "test-agent",
        when,
        if i.is_multiple_of(5) { "POST" } else { "GET" },
        format!("/api/users/{i}"),
        None,
    );
    r.request_headers = vec![Header::new("accept", "application/json")];
    r.baseline = SideRecord {
        status: Some(200),
        headers: vec![Header::new("content-type", "application/json")],
        body: Some(Bytes::from(format!("{{\"id\":{i},\"name\":\"user {i}\"}}"))),
        body_truncated: false,
        latency_us: Some(1000 + i),
        ttfb_us: Some(800 + i),
        error: None,
        trailers: Vec::new(),
    };
    r.canary = SideRecord { latency_us: Some(1100 + i), ..r.baseline.clone() };
    if i.is_multiple_of(7) {
        r.canary = SideRecord::failed(schema::error_kind::RESET);
    }
    r
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    resolve_inputs(&[dir.to_str().expect("utf-8 path")]).unwrap_or_default()
}

#[test]
fn write_close_read_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = WriterConfig::new(dir.path(), "test-agent");
    cfg.row_group_rows = 100;
    cfg.summary = serde_json::json!({"baseline": "http://127.0.0.1:1", "sample_rate": 1.0});
    let seen = Arc::new(AtomicU64::new(0));
    let seen2 = seen.clone();
    cfg.counters = Some(Arc::new(move || BTreeMap::from([("seen".to_owned(), seen2.load(Ordering::Relaxed))])));
    let mut w = PairWriter::new(cfg).expect("writer");
    let written: Vec<PairRecord> = (0..1234).map(|i| record(i, at(i as i64))).collect();
    for r in &written {
        seen.fetch_add(1, Ordering::Relaxed);
        w.write(r.clone()).expect("write");
    }
    // Nothing is visible before close: the only file is a hidden temporary.
    assert!(files_under(dir.path()).is_empty());
    let stats = w.close().expect("close");
    assert_eq!(stats.rows_committed, 1234);
    assert_eq!(stats.rows_pending, 0);
    assert_eq!(stats.files.len(), 1);

    let file = &stats.files[0];
    let rel = file.strip_prefix(dir.path()).expect("under dir");
    let parts: Vec<_> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    assert_eq!(parts[0], "dt=2026-11-24");
    assert_eq!(parts[1], "hour=09");
    assert!(parts[2].starts_with("test-agent-") && parts[2].ends_with("-000000.parquet"), "{}", parts[2]);

    let back = PairReader::read_all_records(&[dir.path().to_str().expect("utf-8")]).expect("read");
    assert_eq!(back, written);

    let info = PairFile::open(file).expect("open").info;
    assert_eq!(info.rows, 1234);
    assert_eq!(info.row_groups, 13);
    assert_eq!(info.schema_version, Some(SCHEMA_VERSION));
    assert_eq!(info.agent.as_deref(), Some("test-agent"));
    assert_eq!(info.counters.get("seen"), Some(&1234));
    assert_eq!(info.config["sample_rate"], 1.0);
    assert_eq!(info.partitions.get("hour").map(String::as_str), Some("09"));
    assert!(info.closed_at.is_some());
}

#[test]
fn rotates_by_rows_and_hour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = WriterConfig::new(dir.path(), "rot");
    cfg.rotate_rows = 250;
    cfg.row_group_rows = 64;
    let mut w = PairWriter::new(cfg).expect("writer");
    // 600 pairs in hour 09, then 100 in hour 10.
    for i in 0..600 {
        w.write(record(i, at(i as i64))).expect("write");
    }
    for i in 600..700 {
        w.write(record(i, at(3600 + i as i64))).expect("write");
    }
    // A late pair from hour 09 stays in the open hour-10 file rather than reopening hour 09.
    w.write(record(700, at(10))).expect("write");
    let stats = w.close().expect("close");
    let rows: Vec<u64> = stats.files.iter().map(|f| PairFile::open(f).expect("open").info.rows).collect();
    assert_eq!(rows, vec![250, 250, 100, 101]);
    let hours: Vec<String> = stats.files.iter().map(|f| reader::hive_partitions(f)["hour"].clone()).collect();
    assert_eq!(hours, ["09", "09", "09", "10"]);
    assert_eq!(files_under(dir.path()).len(), 4);
    let total: usize = PairReader::read_all_records(&[dir.path().to_str().expect("utf-8")]).expect("read").len();
    assert_eq!(total, 701);
}

#[test]
fn rotates_by_bytes_and_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = WriterConfig::new(dir.path(), "bytes");
    cfg.rotate_bytes = 20_000;
    cfg.row_group_rows = 50;
    let mut w = PairWriter::new(cfg).expect("writer");
    for i in 0..1000 {
        let mut r = record(i, at(0));
        // Incompressible bodies so the size grows predictably.
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let noise: Vec<u8> = (0..400)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        r.canary.body = Some(Bytes::from(noise));
        w.write(r).expect("write");
    }
    let stats = w.close().expect("close");
    assert!(stats.files.len() >= 10, "only {} files", stats.files.len());
    for f in &stats.files[..stats.files.len() - 1] {
        let size = fs::metadata(f).expect("stat").len();
        assert!(size < 20_000 + 50 * 1_000, "{} is {size} bytes", f.display());
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = WriterConfig::new(dir.path(), "age");
    cfg.rotate_age = Duration::from_millis(50);
    let mut w = PairWriter::new(cfg).expect("writer");
    w.write(record(1, at(0))).expect("write");
    w.maybe_rotate().expect("not yet due");
    assert!(files_under(dir.path()).is_empty());
    std::thread::sleep(Duration::from_millis(80));
    w.maybe_rotate().expect("rotate");
    assert_eq!(files_under(dir.path()).len(), 1, "an aged file is published without close");
    w.write(record(2, at(1))).expect("write");
    assert_eq!(w.close().expect("close").files.len(), 2);
}

#[test]
fn drop_without_close_still_publishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut w = PairWriter::new(WriterConfig::new(dir.path(), "drop")).expect("writer");
        w.write(record(1, at(0))).expect("write");
    }
    assert_eq!(PairReader::read_all_records(&[dir.path().to_str().expect("utf-8")]).expect("read").len(), 1);
}

#[test]
fn projection_reads_only_requested_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = PairWriter::new(WriterConfig::new(dir.path(), "proj")).expect("writer");
    for i in 0..10 {
        w.write(record(i, at(0))).expect("write");
    }
    w.close().expect("close");
    let opts = ReadOptions { batch_size: 3, columns: Some(vec![schema::METHOD, schema::CANARY.error]) };
    let batches: Vec<_> = PairReader::open(&[dir.path().to_str().expect("utf-8")], opts)
        .expect("open")
        .collect::<crate::Result<_>>()
        .expect("read");
    assert_eq!(batches.len(), 4, "batch size bounds each batch");
    assert!(batches.iter().all(|b| b.batch.num_columns() == 2 && b.batch.num_rows() <= 3));
    assert_eq!(batches[0].batch.schema().field(1).name(), "canary_error");
}

#[test]
fn globs_and_directories_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = PairWriter::new(WriterConfig::new(dir.path(), "g")).expect("writer");
    w.write(record(1, at(0))).expect("write");
    w.write(record(2, at(7200))).expect("write");
    w.close().expect("close");
    fs::write(dir.path().join("notes.txt"), "not a pair file").expect("write");
    fs::write(dir.path().join("dt=2026-11-24").join("hour=09").join(".x.parquet.tmp"), "PAR1").expect("write");
    let root = dir.path().to_str().expect("utf-8");
    assert_eq!(resolve_inputs(&[root]).expect("dir").len(), 2);
    assert_eq!(resolve_inputs(&[format!("{root}/**/*.parquet")]).expect("glob").len(), 2);
    assert_eq!(resolve_inputs(&[format!("{root}/dt=*/hour=11")]).expect("glob of dirs").len(), 1);
    // The same file named twice is read once.
    assert_eq!(resolve_inputs(&[root, root]).expect("dedup").len(), 2);
}

fn open_err(path: &Path) -> Error {
    PairFile::open(path).err().expect("should fail")
}

#[test]
fn bad_inputs_are_named_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    let missing = d.join("nope.parquet");
    let e = resolve_inputs(&[missing.to_str().expect("utf-8")]).expect_err("missing");
    assert!(matches!(e, Error::NotFound { .. }));
    assert!(e.to_string().contains("nope.parquet") && e.to_string().contains("does not exist"), "{e}");

    let empty_dir = d.join("empty");
    fs::create_dir(&empty_dir).expect("mkdir");
    let e = resolve_inputs(&[empty_dir.to_str().expect("utf-8")]).expect_err("empty dir");
    assert!(matches!(e, Error::NoPairFiles { .. }), "{e}");
    assert!(e.to_string().contains("empty"), "{e}");

    let e = resolve_inputs(&[format!("{}/*.nothing", d.display())]).expect_err("glob matches nothing");
    assert!(matches!(e, Error::NoPairFiles { .. }));

    let e = resolve_inputs(&[format!("{}/[", d.display())]).expect_err("bad glob");
    assert!(matches!(e, Error::BadGlob { .. }), "{e}");

    let text = d.join("text.parquet");
    fs::write(&text, "id,name\n1,a\n").expect("write");
    let e = open_err(&text);
    assert!(matches!(e, Error::NotParquet { .. }), "{e}");
    assert!(e.to_string().contains("text.parquet"));

    let zero = d.join("zero.parquet");
    fs::write(&zero, "").expect("write");
    assert!(matches!(open_err(&zero), Error::EmptyFile { .. }));

    // A real pair file cut short: no footer.
    let good_dir = d.join("good");
    let mut w = PairWriter::new(WriterConfig::new(&good_dir, "t")).expect("writer");
    for i in 0..100 {
        w.write(record(i, at(0))).expect("write");
    }
    let good = w.close().expect("close").files.remove(0);
    let bytes = fs::read(&good).expect("read");
    let cut = d.join("cut.parquet");
    fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let e = open_err(&cut);
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("cut.parquet") && e.to_string().contains("footer"), "{e}");

    // Footer present but damaged.
    let mut damaged = bytes.clone();
    let n = damaged.len();
    for b in &mut damaged[n - 200..n - 8] {
        *b = 0xAB;
    }
    let bad = d.join("damaged.parquet");
    fs::write(&bad, &damaged).expect("write");
    assert!(matches!(open_err(&bad), Error::Corrupt { .. }));
}

/// Opens `bytes` (a file found by fuzzing) as `name`: it must be refused as a damaged file; the
/// error and its cause, as one line.
fn refused_as_damaged(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    fs::write(&path, bytes).expect("write");
    let e = open_err(&path);
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    format!("{e}: {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default())
}

/// Found by fuzzing (fuzz/regressions/pair_file/): a footer whose column chunk starts at a
/// negative offset made the parquet reader panic (an assertion in `ColumnChunkMetaData::byte_range`)
/// on the first batch. It is a damaged file, refused when opened.
#[test]
fn a_negative_column_chunk_offset_is_a_damaged_file() {
    let chain = refused_as_damaged(
        "negative.parquet",
        include_bytes!("../../fuzz/regressions/pair_file/negative-column-chunk-offset"),
    );
    assert!(chain.contains("negative.parquet") && chain.contains("row group"), "{chain}");
}

/// Found by fuzzing (fuzz/regressions/pair_file/): a damaged page whose definition levels overrun
/// their buffer made the parquet crate panic (arrow-buffer: "offset + len out of bounds") in the
/// middle of a read. The reader reports a damaged file and stops: since the page headers are
/// checked at open (`check_pages`), this one is refused there, before any page is decoded; a
/// panic while decoding is still caught (`catch_unwind` around each batch).
#[test]
fn a_page_the_parquet_crate_panics_on_is_a_damaged_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("levels.parquet");
    fs::write(&path, include_bytes!("../../fuzz/regressions/pair_file/definition-levels-out-of-bounds"))
        .expect("write");
    let results: Vec<_> = PairReader::from_files(vec![path], ReadOptions::default()).collect();
    let e = results.iter().find_map(|r| r.as_ref().err()).expect("a damaged file is an error");
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    let source = std::error::Error::source(e).map(ToString::to_string).unwrap_or_default();
    assert!(source.contains("row group 0 column 9"), "{source}");
    assert!(results.last().is_some_and(Result::is_err), "nothing is read after the damage");
}

/// Found by fuzzing (fuzz/regressions/pair_file/, a libFuzzer run of `pair_file` hitting its 2 GB
/// limit after 953,434 executions): a 12 KB file of one row made the parquet reader allocate
/// 3 GB for one batch of 64 rows. Its footer and every page header up to column 15 say one value;
/// after column 15's one data page the chunk goes on with bytes that are not a page header, which
/// the reader read on from. It is refused at open, before any page is decoded, naming the column.
#[test]
fn a_page_announcing_more_values_than_its_footer_counts_is_a_damaged_file() {
    // Its page headers do not even parse once read apart from the data (the scan stops at the
    // first column whose pages are damaged).
    let chain = refused_as_damaged("bomb.parquet", include_bytes!("../../fuzz/regressions/pair_file/rle-bomb-3gb"));
    assert!(chain.contains("bomb.parquet") && chain.contains("row group 0 column 15"), "{chain}");
}

/// Found by the suite's own mutation run (fuzz/src/tests.rs) minutes after the page-header check
/// above landed: a data page header without its data-page part made the parquet crate panic
/// (an unwrap) while the headers were read. A damaged file, refused at open.
#[test]
fn a_page_header_the_parquet_crate_panics_on_is_a_damaged_file() {
    let chain = refused_as_damaged(
        "header.parquet",
        include_bytes!("../../fuzz/regressions/pair_file/page-header-without-data-header"),
    );
    assert!(chain.contains("header.parquet") && chain.contains("the parquet reader failed"), "{chain}");
}

fn write_foreign(
    path: &Path,
    schema: arrow_schema::SchemaRef,
    columns: Vec<arrow_array::ArrayRef>,
    kv: Vec<(&str, &str)>,
) {
    use parquet::file::metadata::KeyValue;
    let batch = arrow_array::RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(kv.into_iter().map(|(k, v)| KeyValue::new(k.into(), v.to_owned())).collect()))
        .build();
    let file = fs::File::create(path).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

#[test]
fn foreign_schema_and_newer_version_are_refused() {
    use arrow_array::{ArrayRef, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    let dir = tempfile::tempdir().expect("tempdir");

    let foreign = dir.path().join("orders.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("order_id", DataType::Int64, false)]));
    write_foreign(&foreign, schema, vec![Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef], vec![]);
    let e = open_err(&foreign);
    assert!(matches!(e, Error::SchemaMismatch { .. }), "{e}");
    assert!(e.to_string().contains("orders.parquet") && e.to_string().contains("pair_id"), "{e}");

    // The right columns, but written by a newer shadowdiff.
    let newer = dir.path().join("newer.parquet");
    let batch = batch::records_to_batch(&[record(1, at(0))]).expect("batch");
    let v = (SCHEMA_VERSION + 1).to_string();
    write_foreign(&newer, SCHEMA.clone(), batch.columns().to_vec(), vec![(schema::meta::SCHEMA_VERSION, &v)]);
    let e = open_err(&newer);
    assert!(matches!(e, Error::NewerSchemaVersion { .. }), "{e}");
    assert!(e.to_string().contains("upgrade"), "{e}");

    let garbage = dir.path().join("garbage-version.parquet");
    write_foreign(&garbage, SCHEMA.clone(), batch.columns().to_vec(), vec![(schema::meta::SCHEMA_VERSION, "one")]);
    assert!(matches!(open_err(&garbage), Error::BadMetadata { .. }));
}

#[test]
fn files_rewritten_with_wider_types_are_read() {
    use arrow_array::{ArrayRef, LargeStringArray, TimestampNanosecondArray, UInt32Array};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    let dir = tempfile::tempdir().expect("tempdir");
    let original = vec![record(1, at(0)), record(2, at(1))];
    let batch = batch::records_to_batch(&original).expect("batch");
    // Rewrite the way other tools do: large strings, nanosecond timestamps without metadata,
    // a wider status integer.
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in SCHEMA.fields().iter().zip(batch.columns()) {
        let (field, col): (Field, ArrayRef) = match f.name().as_str() {
            schema::PATH => (
                Field::new(f.name(), DataType::LargeUtf8, false),
                Arc::new(LargeStringArray::from(vec!["/api/users/1", "/api/users/2"])),
            ),
            schema::CAPTURED_AT => (
                Field::new(f.name(), DataType::Timestamp(TimeUnit::Nanosecond, None), false),
                Arc::new(TimestampNanosecondArray::from(vec![
                    at(0).timestamp_nanos_opt().expect("fits"),
                    at(1).timestamp_nanos_opt().expect("fits"),
                ])),
            ),
            "baseline_status" => {
                (Field::new(f.name(), DataType::UInt32, true), Arc::new(UInt32Array::from(vec![200, 200])))
            }
            _ => (f.as_ref().clone(), c.clone()),
        };
        fields.push(field);
        columns.push(col);
    }
    let path = dir.path().join("rewritten.parquet");
    write_foreign(&path, Arc::new(Schema::new(fields)), columns, vec![]);
    let info = PairFile::open(&path).expect("compatible").info;
    assert_eq!(info.schema_version, None);
    let back = PairReader::read_all_records(&[path.to_str().expect("utf-8")]).expect("read");
    assert_eq!(back, original);
}

#[test]
fn version_1_files_without_trailers_read_with_empty_trailers() {
    use arrow_array::ArrayRef;
    use arrow_schema::{Field, Schema};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut original = vec![record(1, at(0)), record(2, at(1))];
    let batch = batch::records_to_batch(&original).expect("batch");
    let added = schema::added_columns();
    let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = SCHEMA
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| !added.contains(&f.name().as_str()))
        .map(|(f, c)| (f.as_ref().clone(), c.clone()))
        .unzip();
    let path = dir.path().join("v1.parquet");
    write_foreign(&path, Arc::new(Schema::new(fields)), columns, vec![(schema::meta::SCHEMA_VERSION, "1")]);
    let info = PairFile::open(&path).expect("a version 1 file opens").info;
    assert_eq!(info.schema_version, Some(1));
    let back = PairReader::read_all_records(&[path.to_str().expect("utf-8")]).expect("read");
    for r in &mut original {
        for side in schema::Side::ALL {
            r.side_mut(side).trailers.clear();
        }
    }
    assert_eq!(back, original);
    // Projected to the trailers alone, a version 1 file gives empty lists too.
    let only: Vec<&str> = vec![schema::PAIR_ID, schema::BASELINE.trailers];
    let mut batches = PairFile::open(&path).expect("open").batches(16, Some(&only)).expect("batches");
    let b = batches.next().expect("a batch").expect("read");
    assert_eq!(b.num_rows(), 2);
    assert_eq!(b.column(1).len(), 2);
    assert_eq!(b.column(1).null_count(), 0);
}
