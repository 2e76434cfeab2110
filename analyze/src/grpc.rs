//! gRPC messages as JSON, so they go through the same diff engine and rules as JSON bodies.
//!
//! A gRPC body (`content-type: application/grpc` or `application/grpc+proto`) is a sequence of
//! length-prefixed messages: one byte saying whether the message is compressed (by the side's
//! `grpc-encoding`), four bytes of big-endian length, then the message. Each message is decoded:
//!
//! - **by a descriptor set** ([`Schema`], the policy's `[grpc] descriptor_set` or analyze's
//!   `--descriptor-set`): the request path `/package.Service/Method` names the method, the
//!   descriptor its request and response types, and the message becomes its proto3 JSON
//!   mapping (prost-reflect): fields by their JSON names (`/price/units`), enums by name, bytes
//!   in base64, well-known types (`Timestamp`, `Struct` …) as their JSON forms. Two choices
//!   differ from the canonical printer, for diffing: every field is present, defaults included
//!   (a field set to its default is a changed value, not a removed field), and 64-bit integers
//!   stay numbers (exact in the diff engine, and tolerances apply to them).
//! - **by the wire format** when there is no descriptor set or it does not hold the method:
//!   fields by number (`/3/1`), a repeated field as an array, varints as unsigned integers,
//!   fixed-width values as floating point when their bits read as an ordinary float and as
//!   unsigned integers otherwise, a length-delimited value as text when it is printable UTF-8,
//!   else as a nested message when it parses as one, else as base64; and a repeated field of
//!   map entries (a scalar key in field 1, a value in field 2, distinct keys) as an object by key,
//!   since maps come in no fixed order.
//!
//! A unary message (by the descriptor) is compared as itself; a stream's messages (or, without
//! a descriptor, any count but one) as the JSON array of them, message by message (`/2/name`).
//! A body that the recorder cut keeps its complete messages. A message that does not decode —
//! a prefix that claims more bytes than follow, a flag byte other than 0 or 1, a compressed
//! message without a known `grpc-encoding`, bytes that are not protobuf or not the method's
//! type — makes the body undecodable: a [`Problem`] that names the message and says why.
//!
//! Nothing recurses without bound: nested messages are read to [`MAX_DEPTH`] levels.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, SerializeOptions};
use serde_json::{Map, Value};
use shadowdiff_format::encoding::{DecodeError, decode};

use crate::error::{Error, Result};

/// Nested messages are read this deep (protobuf's own parsers stop at 100).
pub const MAX_DEPTH: usize = 64;

/// Whether a `Content-Type` is gRPC's protobuf framing: `application/grpc` or
/// `application/grpc+proto` (not `+json`, nor gRPC-Web, whose framing differs).
pub fn is_grpc(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let media = ct.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/grpc") || media.eq_ignore_ascii_case("application/grpc+proto")
}

/// A descriptor set (`protoc --descriptor_set_out`, `buf build -o`), with the well-known types.
#[derive(Clone)]
pub struct Schema {
    pool: DescriptorPool,
    path: PathBuf,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("path", &self.path).field("services", &self.pool.services().len()).finish()
    }
}

/// One method's types, from the descriptor set.
#[derive(Debug, Clone)]
pub struct Method {
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

impl Schema {
    /// Reads a descriptor set. Errors name the file and say what is wrong with it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadDescriptorSet { path: path.to_owned(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// A descriptor set from its bytes; `path` is for messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let invalid = |message: String| Error::DescriptorSet { path: path.to_owned(), message };
        let mut pool = DescriptorPool::global();
        pool.decode_file_descriptor_set(bytes).map_err(|e| {
            invalid(format!("not a protobuf FileDescriptorSet (the output of protoc --descriptor_set_out): {e}"))
        })?;
        if pool.services().len() == 0 {
            return Err(invalid("it describes no service, so no gRPC method can be decoded by it".to_owned()));
        }
        Ok(Self { pool, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The method a request path names (`/shop.v1.Shop/GetItem`), if the set has it.
    pub fn method(&self, path: &str) -> Option<Method> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        let m = self.pool.get_service_by_name(service)?.methods().find(|m| m.name() == method)?;
        Some(Method {
            input: m.input(),
            output: m.output(),
            client_streaming: m.is_client_streaming(),
            server_streaming: m.is_server_streaming(),
        })
    }
}

/// Which messages of a call a body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// How a body's messages were decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedBy {
    /// By the descriptor set, as this message type (`shop.v1.Item`).
    Descriptor(String),
    /// By the wire format, fields by number.
    WireFormat,
}

/// A gRPC body's messages as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    /// The one message of a unary direction, or the array of a stream's messages.
    pub value: Value,
    /// Complete messages read.
    pub count: usize,
    /// `value` is the array of the messages (a stream), not one message.
    pub stream: bool,
    /// The body was cut by the recorder: more messages may have followed.
    pub cut: bool,
    /// The cut body ended inside a message, which was left out.
    pub dropped: bool,
    pub by: DecodedBy,
}

/// Why a gRPC body could not be decoded: a sentence fragment that follows `undecodable: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The JSON mapping used for descriptor-decoded messages (see the module docs).
const JSON: SerializeOptions = SerializeOptions::new().skip_default_fields(false).stringify_64_bit_integers(false);

/// Decodes a gRPC body. `encoding` is the side's `grpc-encoding`; `cut` says the recorder cut the
/// body; `method` is the call's method from the descriptor set, if known; `cap` bounds each
/// decompressed message.
pub fn decode_body(
    body: &[u8],
    encoding: Option<&str>,
    cut: bool,
    method: Option<&Method>,
    direction: Direction,
    cap: u64,
) -> Result<Messages, Problem> {
    let (frames, dropped) = frames(body, cut)?;
    let (descriptor, unary) = match (method, direction) {
        (Some(m), Direction::Request) => (Some(&m.input), !m.client_streaming),
        (Some(m), Direction::Response) => (Some(&m.output), !m.server_streaming),
        (None, _) => (None, frames.len() == 1),
    };
    let mut values = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let n = i + 1;
        let payload = frame.payload(n, encoding, cap)?;
        values.push(match descriptor {
            Some(d) => by_descriptor(&payload, d).map_err(|why| Problem(format!("gRPC message {n}: {why}")))?,
            None => Value::Object(
                wire_message(&payload).map_err(|why| Problem(format!("gRPC message {n} is not protobuf: {why}")))?,
            ),
        });
    }
    let count = values.len();
    let stream = !(unary && count == 1);
    let value = if stream { Value::Array(values) } else { values.pop().unwrap_or(Value::Null) };
    let by = descriptor.map_or(DecodedBy::WireFormat, |d| DecodedBy::Descriptor(d.full_name().to_owned()));
    Ok(Messages { value, count, stream, cut, by, dropped })
}

/// Two streams of messages of which one or both were cut: compared only as far as the shorter cut
/// side has complete messages, as cut event streams are; `None` when nothing needs cutting.
pub fn bound_cut(a: &Value, a_cut: bool, b: &Value, b_cut: bool) -> Option<(Value, Value)> {
    let (Value::Array(x), Value::Array(y)) = (a, b) else { return None };
    let limit = [(a_cut, x.len()), (b_cut, y.len())].into_iter().filter(|(cut, _)| *cut).map(|(_, n)| n).min()?;
    if x.len() <= limit && y.len() <= limit {
        return None;
    }
    let take = |v: &[Value]| Value::Array(v[..v.len().min(limit)].to_vec());
    Some((take(x), take(y)))
}

/// One length-prefixed message.
struct Frame<'a> {
    compressed: bool,
    bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The message's bytes, decompressed when its flag says so.
    fn payload(&self, n: usize, encoding: Option<&str>, cap: u64) -> Result<Cow<'a, [u8]>, Problem> {
        if !self.compressed {
            return Ok(Cow::Borrowed(self.bytes));
        }
        let Some(encoding) = encoding.map(str::trim).filter(|e| !e.eq_ignore_ascii_case("identity")) else {
            return Err(Problem(format!("gRPC message {n} is flagged compressed but the side names no grpc-encoding")));
        };
        match decode(self.bytes, Some(encoding), cap) {
            Ok(d) if d.truncated => Err(Problem(format!("gRPC message {n} decompresses to more than {cap} bytes"))),
            Ok(d) => Ok(Cow::Owned(d.bytes.into_owned())),
            Err(DecodeError::Unknown { .. }) => Err(Problem(format!(
                "gRPC message {n} is compressed with grpc-encoding `{encoding}`, which analyze does not decode"
            ))),
            Err(e) => Err(Problem(format!("gRPC message {n}: {e}"))),
        }
    }
}

/// Splits a body into its messages. A body that was `cut` may end inside a message, which is
/// dropped (the second value says one was); otherwise that is a malformed body.
fn frames(body: &[u8], cut: bool) -> Result<(Vec<Frame<'_>>, bool), Problem> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = out.len() + 1;
        if rest.len() < 5 {
            if cut {
                return Ok((out, true));
            }
            return Err(Problem(format!("gRPC message {n} is cut: {} bytes of its 5-byte length prefix", rest.len())));
        }
        let compressed = match rest[0] {
            0 => false,
            1 => true,
            flag => {
                return Err(Problem(format!("gRPC message {n} has compressed-flag byte {flag}, not 0 or 1")));
            }
        };
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if rest.len() - 5 < len {
            if cut {
                return Ok((out, true));
            }
            return Err(Problem(format!(
                "gRPC message {n} is cut: its prefix says {len} bytes and {} follow",
                rest.len() - 5
            )));
        }
        out.push(Frame { compressed, bytes: &rest[5..5 + len] });
        rest = &rest[5 + len..];
    }
    Ok((out, false))
}

/// One message by its type, as its JSON mapping.
fn by_descriptor(bytes: &[u8], descriptor: &MessageDescriptor) -> Result<Value, String> {
    let message = DynamicMessage::decode(descriptor.clone(), bytes)
        .map_err(|e| format!("does not decode as {}: {e}", descriptor.full_name()))?;
    let mut json = message
        .serialize_with_options(serde_json::value::Serializer, &JSON)
        .map_err(|e| format!("{} has no JSON form: {e}", descriptor.full_name()))?;
    add_unknown(&message, &mut json, 0);
    Ok(json)
}

/// Fields the descriptors do not know — a field the canary added after the descriptors were
/// taken — are kept beside the known ones, by number and read by the wire format (`/price/7`),
/// where the proto3 JSON mapping would silently drop them. A number never collides with a JSON
/// field name, which cannot start with a digit. Well-known types keep their JSON forms.
fn add_unknown(message: &DynamicMessage, json: &mut Value, depth: usize) {
    let Value::Object(object) = json else { return };
    if depth >= MAX_DEPTH || message.descriptor().full_name().starts_with("google.protobuf.") {
        return;
    }
    let mut unknown = Vec::new();
    for field in message.unknown_fields() {
        field.encode(&mut unknown);
    }
    if !unknown.is_empty()
        && let Ok(fields) = wire_message(&unknown)
    {
        object.extend(fields);
    }
    for (field, value) in message.fields() {
        let Some(child) = object.get_mut(field.json_name()) else { continue };
        match (value, child) {
            (prost_reflect::Value::Message(m), child) => add_unknown(m, child, depth + 1),
            (prost_reflect::Value::List(items), Value::Array(children)) => {
                for (item, child) in items.iter().zip(children) {
                    if let Some(m) = item.as_message() {
                        add_unknown(m, child, depth + 1);
                    }
                }
            }
            (prost_reflect::Value::Map(entries), Value::Object(children)) => {
                for (key, item) in entries {
                    let key = match key {
                        prost_reflect::MapKey::Bool(b) => b.to_string(),
                        prost_reflect::MapKey::I32(n) => n.to_string(),
                        prost_reflect::MapKey::I64(n) => n.to_string(),
                        prost_reflect::MapKey::U32(n) => n.to_string(),
                        prost_reflect::MapKey::U64(n) => n.to_string(),
                        prost_reflect::MapKey::String(s) => s.clone(),
                    };
                    if let (Some(m), Some(child)) = (item.as_message(), children.get_mut(&key)) {
                        add_unknown(m, child, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A message decoded by the wire format alone: `{"1": 7, "2": {"1": "x"}}`.
pub fn wire_message(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let mut buf = bytes;
    wire_fields(&mut buf, 0, None)
}

/// Reads fields until the buffer ends, or until the end-group tag of `group`.
fn wire_fields(buf: &mut &[u8], depth: usize, group: Option<u32>) -> Result<Map<String, Value>, String> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let mut fields: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
    loop {
        if buf.is_empty() {
            if let Some(g) = group {
                return Err(format!("group {g} is not closed"));
            }
            break;
        }
        let (number, wire_type) = decode_key(buf).map_err(|e| e.to_string())?;
        let value = match wire_type {
            WireType::Varint => Value::from(decode_varint(buf).map_err(|e| e.to_string())?),
            WireType::SixtyFourBit => {
                let bytes: [u8; 8] = take(buf, 8, number)?.try_into().map_err(|_| "8 bytes".to_owned())?;
                fixed64(u64::from_le_bytes(bytes))
            }
            WireType::ThirtyTwoBit => {
                let bytes: [u8; 4] = take(buf, 4, number)?.try_into().map_err(|_| "4 bytes".to_owned())?;
                fixed32(u32::from_le_bytes(bytes))
            }
            WireType::LengthDelimited => {
                let len = decode_varint(buf).map_err(|e| e.to_string())?;
                let len = usize::try_from(len).map_err(|_| format!("field {number} claims {len} bytes"))?;
                length_delimited(take(buf, len, number)?, depth)
            }
            WireType::StartGroup => {
                if depth + 1 >= MAX_DEPTH {
                    return Err(format!("nested more than {MAX_DEPTH} levels deep"));
                }
                Value::Object(wire_fields(buf, depth + 1, Some(number))?)
            }
            WireType::EndGroup if group == Some(number) => break,
            WireType::EndGroup => return Err(format!("an end-group tag for field {number} with no such group open")),
        };
        fields.entry(number).or_default().push(value);
    }
    Ok(fields
        .into_iter()
        .map(|(number, mut values)| {
            let v = match values.len() {
                1 => values.pop().unwrap_or(Value::Null),
                _ => map_entries(&values).unwrap_or(Value::Array(values)),
            };
            (number.to_string(), v)
        })
        .collect())
}

/// A repeated field whose elements all look like map entries — messages of a scalar key in field
/// 1 and a value in field 2, every key different — as the map it almost surely is (a `map<K, V>`
/// is exactly that on the wire): an object by key. Maps are written in no fixed order (two
/// processes of one server may differ), so compared as a list they would differ for nothing.
fn map_entries(values: &[Value]) -> Option<Value> {
    let mut map = Map::with_capacity(values.len());
    for v in values {
        let entry = v.as_object().filter(|o| o.keys().all(|k| k == "1" || k == "2"))?;
        let key = match entry.get("1")? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        if map.insert(key, entry.get("2").cloned().unwrap_or(Value::Null)).is_some() {
            return None;
        }
    }
    Some(Value::Object(map))
}

fn take<'a>(buf: &mut &'a [u8], len: usize, number: u32) -> Result<&'a [u8], String> {
    if buf.len() < len {
        return Err(format!("field {number} needs {len} bytes and {} follow", buf.len()));
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

/// A length-delimited value: printable text, else a nested message, else base64 bytes.
fn length_delimited(bytes: &[u8], depth: usize) -> Value {
    let text = std::str::from_utf8(bytes).ok();
    if let Some(t) = text.filter(|t| t.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))) {
        return Value::String(t.to_owned());
    }
    if depth + 1 < MAX_DEPTH {
        let mut buf = bytes;
        if let Ok(m) = wire_fields(&mut buf, depth + 1, None) {
            return Value::Object(m);
        }
    }
    match text {
        Some(t) => Value::String(t.to_owned()),
        None => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

/// A 64-bit fixed-width value: a `double` when its bits read as one of ordinary magnitude,
/// otherwise the unsigned integer (`fixed64`, `sfixed64` as two's complement).
fn fixed64(bits: u64) -> Value {
    let f = f64::from_bits(bits);
    if bits != 0 && f.is_finite() && (1e-9..=1e15).contains(&f.abs()) {
        serde_json::Number::from_f64(f).map_or_else(|| Value::from(bits), Value::Number)
    } else {
        Value::from(bits)
    }
}

/// A 32-bit fixed-width value: a `float` (printed at its own precision, `0.1` not
/// `0.10000000149`) when its bits read as one of ordinary magnitude, otherwise the integer.
fn fixed32(bits: u32) -> Value {
    let f = f32::from_bits(bits);
    if bits != 0 && f.is_finite() && (1e-6..=1e9).contains(&f.abs()) {
        let shortest: f64 = f.to_string().parse().unwrap_or(f64::from(f));
        serde_json::Number::from_f64(shortest).map_or_else(|| Value::from(bits), Value::Number)
    } else {
        Value::from(bits)
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::prost::Message as _;
    use prost_reflect::prost_types::{
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
        ServiceDescriptorProto, field_descriptor_proto::Label, field_descriptor_proto::Type,
    };
    use serde_json::json;

    use super::*;

    fn field(name: &str, number: i32, ty: Type, label: Label, type_name: Option<&str>) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(ty as i32),
            label: Some(label as i32),
            type_name: type_name.map(str::to_owned),
            json_name: None,
            ..Default::default()
        }
    }

    /// shop.v1: `Price {int64 units = 1; string currency = 2}`, `Item {int64 id = 1; string
    /// display_name = 2; Price price = 3; repeated string tags = 4}`, `GetItemRequest {int64 id = 1}`,
    /// and `Shop { GetItem(GetItemRequest) returns (Item); ListItems(GetItemRequest) returns (stream Item) }`.
    fn set() -> Vec<u8> {
        let opt = Label::Optional;
        let file = FileDescriptorProto {
            name: Some("shop.proto".into()),
            package: Some("shop.v1".into()),
            syntax: Some("proto3".into()),
            message_type: vec![
                DescriptorProto {
                    name: Some("Price".into()),
                    field: vec![
                        field("units", 1, Type::Int64, opt, None),
                        field("currency", 2, Type::String, opt, None),
                    ],
                    ..Default::default()
                },
                DescriptorProto {
                    name: Some("Item".into()),
                    field: vec![
                        field("id", 1, Type::Int64, opt, None),
                        field("display_name", 2, Type::String, opt, None),
                        field("price", 3, Type::Message, opt, Some(".shop.v1.Price")),
                        field("tags", 4, Type::String, Label::Repeated, None),
                    ],
                    ..Default::default()
                },
                DescriptorProto {
                    name: Some("GetItemRequest".into()),
                    field: vec![field("id", 1, Type::Int64, opt, None)],
                    ..Default::default()
                },
            ],
            service: vec![ServiceDescriptorProto {
                name: Some("Shop".into()),
                method: vec![
                    MethodDescriptorProto {
                        name: Some("GetItem".into()),
                        input_type: Some(".shop.v1.GetItemRequest".into()),
                        output_type: Some(".shop.v1.Item".into()),
                        ..Default::default()
                    },
                    MethodDescriptorProto {
                        name: Some("ListItems".into()),
                        input_type: Some(".shop.v1.GetItemRequest".into()),
                        output_type: Some(".shop.v1.Item".into()),
                        server_streaming: Some(true),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        FileDescriptorSet { file: vec![file] }.encode_to_vec()
    }

    fn schema() -> Schema {
        Schema::from_bytes(&set(), Path::new("shop.pb")).unwrap()
    }

    /// An Item on the wire: id, display_name, price {units, currency}, tags.
    fn item(id: u8, name: &str, units: u8, tags: &[&str]) -> Vec<u8> {
        let mut price = vec![0x08, units, 0x12, 3];
        price.extend_from_slice(b"EUR");
        let mut m = vec![0x08, id, 0x12, name.len() as u8];
        m.extend_from_slice(name.as_bytes());
        m.extend_from_slice(&[0x1a, price.len() as u8]);
        m.extend_from_slice(&price);
        for t in tags {
            m.extend_from_slice(&[0x22, t.len() as u8]);
            m.extend_from_slice(t.as_bytes());
        }
        m
    }

    fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            out.push(0);
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    #[test]
    fn fields_the_descriptors_do_not_know_are_kept_by_number() {
        let s = schema();
        let m = s.method("/shop.v1.Shop/GetItem").unwrap();
        // Field 9 (a varint) on the item and field 5 (text) on its price: a canary newer than the
        // descriptors.
        let mut price = vec![0x08, 12, 0x12, 3];
        price.extend_from_slice(b"EUR");
        price.extend_from_slice(&[0x2a, 2, b'o', b'k']);
        let mut msg = vec![0x08, 7, 0x1a, price.len() as u8];
        msg.extend_from_slice(&price);
        msg.extend_from_slice(&[0x48, 5]);
        let got = decode_body(&framed(&[msg]), None, false, Some(&m), Direction::Response, 1 << 20).unwrap();
        assert_eq!(got.value["9"], json!(5), "{}", got.value);
        assert_eq!(got.value["price"]["5"], json!("ok"), "{}", got.value);
        assert_eq!(got.value["price"]["units"], json!(12));
    }

    #[test]
    fn a_unary_message_by_its_descriptor_is_its_json_mapping() {
        let s = schema();
        let m = s.method("/shop.v1.Shop/GetItem").unwrap();
        let body = framed(&[item(7, "mug", 12, &["kitchen"])]);
        let got = decode_body(&body, None, false, Some(&m), Direction::Response, 1 << 20).unwrap();
        assert_eq!(
            got.value,
            json!({"id": 7, "displayName": "mug", "price": {"units": 12, "currency": "EUR"}, "tags": ["kitchen"]})
        );
        assert_eq!((got.count, got.stream, got.by), (1, false, DecodedBy::Descriptor("shop.v1.Item".into())));
        // Defaults are present, so a field set to its default is a changed value.
        let empty = decode_body(&framed(&[Vec::new()]), None, false, Some(&m), Direction::Response, 1 << 20).unwrap();
        assert_eq!(empty.value, json!({"id": 0, "displayName": "", "tags": []}));
        let req = decode_body(&framed(&[vec![0x08, 3]]), None, false, Some(&m), Direction::Request, 1 << 20).unwrap();
        assert_eq!(req.value, json!({"id": 3}));
        assert!(s.method("/shop.v1.Shop/Nope").is_none() && s.method("/other.Svc/GetItem").is_none());
        assert!(s.method("GetItem").is_none());
    }

    #[test]
    fn a_stream_is_an_array_and_a_cut_body_keeps_its_complete_messages() {
        let m = schema().method("/shop.v1.Shop/ListItems").unwrap();
        let body = framed(&[item(1, "a", 1, &[]), item(2, "b", 2, &[]), item(3, "c", 3, &[])]);
        let got = decode_body(&body, None, false, Some(&m), Direction::Response, 1 << 20).unwrap();
        assert!(got.stream && got.count == 3);
        assert_eq!(got.value[1]["displayName"], "b");
        let cut = decode_body(&body[..body.len() - 4], None, true, Some(&m), Direction::Response, 1 << 20).unwrap();
        assert_eq!((cut.count, cut.cut, cut.dropped), (2, true, true));
        // Not cut by the recorder: the same bytes are a malformed body.
        let err = decode_body(&body[..body.len() - 4], None, false, Some(&m), Direction::Response, 1 << 20);
        assert_eq!(err.unwrap_err().0, "gRPC message 3 is cut: its prefix says 14 bytes and 10 follow");
    }

    #[test]
    fn without_a_descriptor_fields_are_named_by_number() {
        let body = framed(&[item(7, "mug", 12, &["kitchen", "blue"])]);
        let got = decode_body(&body, None, false, None, Direction::Response, 1 << 20).unwrap();
        assert_eq!(got.value, json!({"1": 7, "2": "mug", "3": {"1": 12, "2": "EUR"}, "4": ["kitchen", "blue"]}));
        assert_eq!((got.stream, got.by), (false, DecodedBy::WireFormat));
        let two = decode_body(&framed(&[vec![0x08, 1], vec![0x08, 2]]), None, false, None, Direction::Response, 64);
        assert_eq!(two.unwrap().value, json!([{"1": 1}, {"1": 2}]));
        // Fixed-width values: a double of ordinary size, else the integer.
        let mut m = vec![0x09];
        m.extend_from_slice(&11.5f64.to_le_bytes());
        m.push(0x11);
        m.extend_from_slice(&12345u64.to_le_bytes());
        m.push(0x1d);
        m.extend_from_slice(&0.1f32.to_le_bytes());
        assert_eq!(wire_message(&m).unwrap(), json!({"1": 11.5, "2": 12345, "3": 0.1}).as_object().unwrap().clone());
        // Repeated entries of a scalar key (1) and a value (2) with distinct keys: a map, by key,
        // so the order they came in does not matter.
        let entry = |k: &str, v: u8| {
            [vec![0x0a, 4 + k.len() as u8, 0x0a, k.len() as u8], k.as_bytes().to_vec(), vec![0x10, v]].concat()
        };
        let ab = [entry("a", 1), entry("b", 2)].concat();
        let ba = [entry("b", 2), entry("a", 1)].concat();
        assert_eq!(wire_message(&ab).unwrap(), wire_message(&ba).unwrap());
        assert_eq!(wire_message(&ab).unwrap(), json!({"1": {"a": 1, "b": 2}}).as_object().unwrap().clone());
        let twice = [entry("a", 1), entry("a", 2)].concat();
        assert_eq!(wire_message(&twice).unwrap()["1"], json!([{"1": "a", "2": 1}, {"1": "a", "2": 2}]), "not a map");
        // Bytes that are neither text nor a message are base64; a group is an object.
        let bin = [0x0a, 2, 0xff, 0xfe, 0x13, 0x08, 0x05, 0x14];
        assert_eq!(wire_message(&bin).unwrap(), json!({"1": "//4=", "2": {"1": 5}}).as_object().unwrap().clone());
    }

    #[test]
    fn malformed_bodies_are_problems_that_say_why() {
        let m = schema().method("/shop.v1.Shop/GetItem").unwrap();
        let cases: Vec<(Vec<u8>, Option<&Method>, Option<&str>, &str)> = vec![
            (vec![0, 0, 0], None, None, "gRPC message 1 is cut: 3 bytes of its 5-byte length prefix"),
            (vec![2, 0, 0, 0, 0], None, None, "gRPC message 1 has compressed-flag byte 2, not 0 or 1"),
            (
                framed(&[vec![0x08, 1]]).into_iter().chain([0, 0, 0, 0, 9, 1]).collect(),
                None,
                None,
                "gRPC message 2 is cut: its prefix says 9 bytes and 1 follow",
            ),
            (framed(&[vec![0xff, 0xff]]), None, None, "gRPC message 1 is not protobuf:"),
            (framed(&[vec![0x08]]), Some(&m), None, "gRPC message 1: does not decode as shop.v1.Item:"),
            // id is a varint in the schema; here it is length-delimited.
            (framed(&[vec![0x0a, 1, b'x']]), Some(&m), None, "gRPC message 1: does not decode as shop.v1.Item:"),
            (
                vec![1, 0, 0, 0, 1, 0],
                None,
                None,
                "gRPC message 1 is flagged compressed but the side names no grpc-encoding",
            ),
            (vec![1, 0, 0, 0, 1, 0], None, Some("snappy"), "gRPC message 1 is compressed with grpc-encoding `snappy`"),
            (vec![1, 0, 0, 0, 2, 0x1f, 0x8b], None, Some("gzip"), "gRPC message 1: gzip stream"),
        ];
        for (body, method, encoding, want) in cases {
            let got = decode_body(&body, encoding, false, method, Direction::Response, 1 << 20);
            let why = got.expect_err(want).0;
            assert!(why.starts_with(want), "{why:?} should start with {want:?}");
        }
    }

    #[test]
    fn compressed_messages_are_decompressed_by_the_grpc_encoding() {
        let msg = item(7, "mug", 12, &[]);
        let gz = shadowdiff_format::encoding::encode(&msg, "gzip").unwrap();
        let mut body = vec![1];
        body.extend_from_slice(&(gz.len() as u32).to_be_bytes());
        body.extend_from_slice(&gz);
        let got = decode_body(&body, Some("gzip"), false, None, Direction::Response, 1 << 20).unwrap();
        assert_eq!(got.value["2"], "mug");
        let small = decode_body(&body, Some("gzip"), false, None, Direction::Response, 4).unwrap_err();
        assert_eq!(small.0, "gRPC message 1 decompresses to more than 4 bytes");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // 10,000 nested groups: an error, not a stack overflow.
        let mut m = vec![0x0b; 10_000];
        m.extend(std::iter::repeat_n(0x0c, 10_000));
        assert!(wire_message(&m).unwrap_err().contains("levels deep"));
        // Nested length-delimited messages past the depth stay bytes.
        let mut v = vec![0x08, 1];
        for _ in 0..200 {
            let mut outer = vec![0x12, v.len() as u8];
            if v.len() > 127 {
                break;
            }
            outer.extend_from_slice(&v);
            v = outer;
        }
        assert!(wire_message(&v).is_ok());
    }

    #[test]
    fn a_set_that_does_not_parse_or_has_no_service_is_an_error_naming_the_file() {
        let e = Schema::from_bytes(b"not a descriptor set", Path::new("bad.pb")).unwrap_err().to_string();
        assert!(e.starts_with("invalid descriptor set bad.pb: not a protobuf FileDescriptorSet"), "{e}");
        let none = FileDescriptorSet { file: vec![] }.encode_to_vec();
        let e = Schema::from_bytes(&none, Path::new("empty.pb")).unwrap_err().to_string();
        assert!(e.contains("describes no service"), "{e}");
        assert!(is_grpc(Some("application/grpc")) && is_grpc(Some("application/grpc+proto; charset=x")));
        assert!(!is_grpc(Some("application/grpc+json")) && !is_grpc(Some("application/grpc-web")) && !is_grpc(None));
    }
}
