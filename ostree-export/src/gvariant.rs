//! A small GVariant (GLib serialisation format, version 1.0 of the specification) encoder and
//! strict decoder: everything OSTree hashes is a GVariant in normal form, so the encoder writes
//! only normal form and the decoder accepts only normal form (it re-encodes what it read and
//! refuses any input whose bytes differ). Decoding is bounded (type nesting, value count) and
//! never panics on hostile bytes.
//!
//! Little-endian throughout (OSTree's on-disk byte order); OSTree itself stores some numbers
//! byte-swapped inside that, which is the caller's business (`objects`).

use std::fmt;

/// Deepest type nesting accepted (GLib allows 128; OSTree's types nest four deep).
const MAX_TYPE_DEPTH: usize = 64;
/// Longest type string accepted inside a variant (`v`) value.
const MAX_TYPE_STRING: usize = 255;
/// Most values one decode may produce: a bound on memory whatever the input size.
pub(crate) const MAX_DECODED_VALUES: usize = 1 << 22;

/// Why bytes are not a GVariant of the expected type in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GvError(pub(crate) &'static str);

impl fmt::Display for GvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

type GvResult<T> = Result<T, GvError>;

fn bad<T>(what: &'static str) -> GvResult<T> {
    Err(GvError(what))
}

/// A GVariant type (all of them but the indefinite ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Type {
    Bool,
    Byte,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Handle,
    Double,
    Str,
    ObjectPath,
    Signature,
    Variant,
    Array(Box<Type>),
    Maybe(Box<Type>),
    Tuple(Vec<Type>),
    DictEntry(Box<Type>, Box<Type>),
}

impl Type {
    /// Parses one complete type string (`"(uuua(ayay))"`), nothing before or after.
    pub(crate) fn parse(s: &str) -> GvResult<Type> {
        let bytes = s.as_bytes();
        let mut pos = 0;
        let t = Self::parse_at(bytes, &mut pos, 0)?;
        if pos != bytes.len() {
            return bad("trailing characters after a type string");
        }
        Ok(t)
    }

    fn parse_at(b: &[u8], pos: &mut usize, depth: usize) -> GvResult<Type> {
        if depth > MAX_TYPE_DEPTH {
            return bad("type nested too deeply");
        }
        let Some(&c) = b.get(*pos) else {
            return bad("truncated type string");
        };
        *pos += 1;
        Ok(match c {
            b'b' => Type::Bool,
            b'y' => Type::Byte,
            b'n' => Type::I16,
            b'q' => Type::U16,
            b'i' => Type::I32,
            b'u' => Type::U32,
            b'x' => Type::I64,
            b't' => Type::U64,
            b'h' => Type::Handle,
            b'd' => Type::Double,
            b's' => Type::Str,
            b'o' => Type::ObjectPath,
            b'g' => Type::Signature,
            b'v' => Type::Variant,
            b'a' => Type::Array(Box::new(Self::parse_at(b, pos, depth + 1)?)),
            b'm' => Type::Maybe(Box::new(Self::parse_at(b, pos, depth + 1)?)),
            b'(' => {
                let mut members = Vec::new();
                loop {
                    match b.get(*pos) {
                        None => return bad("unterminated tuple type"),
                        Some(b')') => {
                            *pos += 1;
                            break;
                        }
                        Some(_) => members.push(Self::parse_at(b, pos, depth + 1)?),
                    }
                }
                Type::Tuple(members)
            }
            b'{' => {
                let key = Self::parse_at(b, pos, depth + 1)?;
                if !key.is_basic() {
                    return bad("dictionary key of a non-basic type");
                }
                let value = Self::parse_at(b, pos, depth + 1)?;
                if b.get(*pos) != Some(&b'}') {
                    return bad("dictionary entry type not closed");
                }
                *pos += 1;
                Type::DictEntry(Box::new(key), Box::new(value))
            }
            _ => return bad("unknown character in a type string"),
        })
    }

    fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Array(_) | Type::Maybe(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }

    /// The type string (`Type::parse` of it gives `self` back).
    pub(crate) fn to_type_string(&self) -> String {
        let mut s = String::new();
        self.write_type_string(&mut s);
        s
    }

    fn write_type_string(&self, s: &mut String) {
        match self {
            Type::Bool => s.push('b'),
            Type::Byte => s.push('y'),
            Type::I16 => s.push('n'),
            Type::U16 => s.push('q'),
            Type::I32 => s.push('i'),
            Type::U32 => s.push('u'),
            Type::I64 => s.push('x'),
            Type::U64 => s.push('t'),
            Type::Handle => s.push('h'),
            Type::Double => s.push('d'),
            Type::Str => s.push('s'),
            Type::ObjectPath => s.push('o'),
            Type::Signature => s.push('g'),
            Type::Variant => s.push('v'),
            Type::Array(e) => {
                s.push('a');
                e.write_type_string(s);
            }
            Type::Maybe(e) => {
                s.push('m');
                e.write_type_string(s);
            }
            Type::Tuple(m) => {
                s.push('(');
                for t in m {
                    t.write_type_string(s);
                }
                s.push(')');
            }
            Type::DictEntry(k, v) => {
                s.push('{');
                k.write_type_string(s);
                v.write_type_string(s);
                s.push('}');
            }
        }
    }

    /// Alignment in bytes (1, 2, 4 or 8).
    pub(crate) fn alignment(&self) -> usize {
        match self {
            Type::Bool | Type::Byte | Type::Str | Type::ObjectPath | Type::Signature => 1,
            Type::I16 | Type::U16 => 2,
            Type::I32 | Type::U32 | Type::Handle => 4,
            Type::I64 | Type::U64 | Type::Double | Type::Variant => 8,
            Type::Array(e) | Type::Maybe(e) => e.alignment(),
            Type::Tuple(m) => m.iter().map(Type::alignment).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// Size in bytes when every value of the type has the same size, else `None`.
    pub(crate) fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Bool | Type::Byte => Some(1),
            Type::I16 | Type::U16 => Some(2),
            Type::I32 | Type::U32 | Type::Handle => Some(4),
            Type::I64 | Type::U64 | Type::Double => Some(8),
            Type::Str
            | Type::ObjectPath
            | Type::Signature
            | Type::Variant
            | Type::Array(_)
            | Type::Maybe(_) => None,
            Type::Tuple(m) => fixed_tuple_size(m.iter(), self.alignment()),
            Type::DictEntry(k, v) => fixed_tuple_size([&**k, &**v].into_iter(), self.alignment()),
        }
    }

    fn members(&self) -> Option<Vec<&Type>> {
        match self {
            Type::Tuple(m) => Some(m.iter().collect()),
            Type::DictEntry(k, v) => Some(vec![k, v]),
            _ => None,
        }
    }
}

fn fixed_tuple_size<'a>(members: impl Iterator<Item = &'a Type>, align: usize) -> Option<usize> {
    let mut size = 0usize;
    let mut any = false;
    for m in members {
        any = true;
        size = align_up(size, m.alignment()) + m.fixed_size()?;
    }
    if !any {
        // The unit type `()` takes one zero byte.
        return Some(1);
    }
    Some(align_up(size, align))
}

fn align_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

/// A GVariant value. Arrays of bytes are kept as `Bytes` (the common case, and a bound on
/// memory: one `Value` per byte would multiply hostile input many times over).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Byte(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Handle(i32),
    /// The IEEE 754 bits, kept exact.
    Double(u64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    Variant(Type, Box<Value>),
    /// `ay`.
    Bytes(Vec<u8>),
    /// Any other array, with its element type (needed when it is empty).
    Array(Type, Vec<Value>),
    Maybe(Type, Option<Box<Value>>),
    Tuple(Vec<Value>),
    DictEntry(Box<Value>, Box<Value>),
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Framing offset width for a container whose body is `body` bytes with `n` offsets, as GLib
/// chooses it: the smallest width whose offsets can address the whole container.
fn offset_width_for_body(body: usize, n: usize) -> usize {
    for w in [1usize, 2, 4] {
        let limit: u64 = (1u64 << (8 * w)) - 1;
        if (body as u64).saturating_add((w as u64).saturating_mul(n as u64)) <= limit {
            return w;
        }
    }
    8
}

/// Framing offset width used in a container of `len` bytes (the reader's view).
fn offset_width_for_len(len: usize) -> usize {
    let len = len as u64;
    if len > u64::from(u32::MAX) {
        8
    } else if len > u64::from(u16::MAX) {
        4
    } else if len > u64::from(u8::MAX) {
        2
    } else {
        1
    }
}

fn push_offset(out: &mut Vec<u8>, value: usize, width: usize) {
    out.extend_from_slice(&(value as u64).to_le_bytes()[..width]);
}

fn pad_to(out: &mut Vec<u8>, align: usize) {
    let target = align_up(out.len(), align);
    out.resize(target, 0);
}

/// Serialises `value`, which must be of type `ty`, into normal form.
pub(crate) fn encode(ty: &Type, value: &Value) -> GvResult<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(ty, value, &mut out)?;
    Ok(out)
}

fn encode_into(ty: &Type, value: &Value, out: &mut Vec<u8>) -> GvResult<()> {
    match (ty, value) {
        (Type::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        (Type::Byte, Value::Byte(b)) => out.push(*b),
        (Type::I16, Value::I16(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::U16, Value::U16(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::I32, Value::I32(v)) | (Type::Handle, Value::Handle(v)) => {
            out.extend_from_slice(&v.to_le_bytes())
        }
        (Type::U32, Value::U32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::I64, Value::I64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Type::U64, Value::U64(v)) | (Type::Double, Value::Double(v)) => {
            out.extend_from_slice(&v.to_le_bytes())
        }
        (Type::Str, Value::Str(s))
        | (Type::ObjectPath, Value::ObjectPath(s))
        | (Type::Signature, Value::Signature(s)) => {
            if s.as_bytes().contains(&0) {
                return bad("a string holds a NUL byte");
            }
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        (Type::Variant, Value::Variant(inner_ty, inner)) => {
            encode_into(inner_ty, inner, out)?;
            out.push(0);
            out.extend_from_slice(inner_ty.to_type_string().as_bytes());
        }
        (Type::Array(e), Value::Bytes(b)) if **e == Type::Byte => out.extend_from_slice(b),
        (Type::Array(e), Value::Array(vt, items)) if **e == *vt => {
            encode_array(e, items, out)?;
        }
        (Type::Maybe(e), Value::Maybe(vt, item)) if **e == *vt => {
            if let Some(item) = item {
                encode_into(e, item, out)?;
                if e.fixed_size().is_none() {
                    out.push(0);
                }
            }
        }
        (Type::Tuple(m), Value::Tuple(items)) => {
            if m.len() != items.len() {
                return bad("tuple arity differs from its type");
            }
            let members: Vec<&Type> = m.iter().collect();
            encode_tuple(ty, &members, &items.iter().collect::<Vec<_>>(), out)?;
        }
        (Type::DictEntry(k, v), Value::DictEntry(kv, vv)) => {
            encode_tuple(ty, &[k, v], &[kv, vv], out)?;
        }
        _ => return bad("value does not match its type"),
    }
    Ok(())
}

fn encode_array(elem: &Type, items: &[Value], out: &mut Vec<u8>) -> GvResult<()> {
    let align = elem.alignment();
    if elem.fixed_size().is_some() {
        for item in items {
            encode_into(elem, item, out)?;
        }
        return Ok(());
    }
    let mut body = Vec::new();
    let mut ends = Vec::with_capacity(items.len());
    for item in items {
        pad_to(&mut body, align);
        encode_into(elem, item, &mut body)?;
        ends.push(body.len());
    }
    let width = offset_width_for_body(body.len(), ends.len());
    let start = out.len();
    out.extend_from_slice(&body);
    for end in ends {
        push_offset(out, end, width);
    }
    debug_assert!(start <= out.len());
    Ok(())
}

fn encode_tuple(ty: &Type, members: &[&Type], items: &[&Value], out: &mut Vec<u8>) -> GvResult<()> {
    if members.is_empty() {
        out.push(0);
        return Ok(());
    }
    let mut body = Vec::new();
    let mut ends = Vec::new();
    for (i, (mt, mv)) in members.iter().zip(items).enumerate() {
        pad_to(&mut body, mt.alignment());
        encode_into(mt, mv, &mut body)?;
        if mt.fixed_size().is_none() && i + 1 < members.len() {
            ends.push(body.len());
        }
    }
    if ty.fixed_size().is_some() {
        pad_to(&mut body, ty.alignment());
    }
    let width = offset_width_for_body(body.len(), ends.len());
    out.extend_from_slice(&body);
    for end in ends.iter().rev() {
        push_offset(out, *end, width);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes `data` as a value of type `ty`, refusing anything not in normal form.
pub(crate) fn decode(ty: &Type, data: &[u8]) -> GvResult<Value> {
    let mut budget = MAX_DECODED_VALUES;
    let value = decode_at(ty, data, &mut budget, 0)?;
    let again = encode(ty, &value)?;
    if again != data {
        return bad("not in normal form");
    }
    Ok(value)
}

fn read_offset(data: &[u8], at: usize, width: usize) -> GvResult<usize> {
    let Some(bytes) = data.get(at..at.saturating_add(width)) else {
        return bad("framing offset out of bounds");
    };
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(bytes);
    usize::try_from(u64::from_le_bytes(buf)).or(bad("framing offset too large"))
}

/// Splits a serialised tuple (or dict entry) into its members' byte ranges.
pub(crate) fn split_tuple<'a>(
    ty: &Type,
    members: &[&Type],
    data: &'a [u8],
) -> GvResult<Vec<&'a [u8]>> {
    if let Some(size) = ty.fixed_size() {
        if data.len() != size {
            return bad("fixed-size tuple of the wrong size");
        }
    }
    let width = offset_width_for_len(data.len());
    let n_offsets = members
        .iter()
        .enumerate()
        .filter(|(i, m)| m.fixed_size().is_none() && i + 1 < members.len())
        .count();
    let Some(body_end) = data.len().checked_sub(n_offsets.saturating_mul(width)) else {
        return bad("tuple shorter than its framing offsets");
    };
    let mut parts = Vec::with_capacity(members.len());
    let mut cursor = 0usize;
    let mut offset_index = 0usize;
    for (i, m) in members.iter().enumerate() {
        let start = align_up(cursor, m.alignment());
        let end = if let Some(size) = m.fixed_size() {
            start
                .checked_add(size)
                .ok_or(GvError("tuple member overflows"))?
        } else if i + 1 == members.len() {
            body_end
        } else {
            offset_index += 1;
            read_offset(data, data.len() - offset_index * width, width)?
        };
        if start > end || end > body_end {
            return bad("tuple member out of bounds");
        }
        parts.push(&data[start..end]);
        cursor = end;
    }
    Ok(parts)
}

/// Splits a serialised array into its elements' byte ranges; more than `max_items` elements
/// are refused before anything is allocated for them.
pub(crate) fn split_array<'a>(
    elem: &Type,
    data: &'a [u8],
    max_items: usize,
) -> GvResult<Vec<&'a [u8]>> {
    if let Some(size) = elem.fixed_size() {
        if !data.len().is_multiple_of(size) {
            return bad("fixed-size array length not a multiple of its element size");
        }
        if data.len() / size > max_items {
            return bad("too many array elements");
        }
        return Ok(data.chunks_exact(size).collect());
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let width = offset_width_for_len(data.len());
    let last = read_offset(data, data.len().saturating_sub(width), width)?;
    if last > data.len() {
        return bad("array offsets start out of bounds");
    }
    let table = data.len() - last;
    if !table.is_multiple_of(width) {
        return bad("array framing table of a bad size");
    }
    let n = table / width;
    if n > max_items {
        return bad("too many array elements");
    }
    let mut parts = Vec::with_capacity(n);
    let mut cursor = 0usize;
    for i in 0..n {
        let start = align_up(cursor, elem.alignment());
        let end = read_offset(data, last + i * width, width)?;
        if start > end || end > last {
            return bad("array element out of bounds");
        }
        parts.push(&data[start..end]);
        cursor = end;
    }
    Ok(parts)
}

fn fixed<const N: usize>(data: &[u8]) -> GvResult<[u8; N]> {
    data.try_into()
        .or(bad("fixed-size value of the wrong size"))
}

/// A GVariant string: UTF-8, one trailing NUL, no other NUL.
pub(crate) fn decode_str(data: &[u8]) -> GvResult<&str> {
    let Some((&0, text)) = data.split_last() else {
        return bad("string without its terminating NUL");
    };
    if text.contains(&0) {
        return bad("string with a NUL inside");
    }
    std::str::from_utf8(text).or(bad("string that is not UTF-8"))
}

fn decode_at(ty: &Type, data: &[u8], budget: &mut usize, depth: usize) -> GvResult<Value> {
    if *budget == 0 {
        return bad("too many values");
    }
    *budget -= 1;
    if depth > MAX_TYPE_DEPTH {
        return bad("value nested too deeply");
    }
    Ok(match ty {
        Type::Bool => match data {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return bad("boolean that is neither 0 nor 1"),
        },
        Type::Byte => Value::Byte(fixed::<1>(data)?[0]),
        Type::I16 => Value::I16(i16::from_le_bytes(fixed(data)?)),
        Type::U16 => Value::U16(u16::from_le_bytes(fixed(data)?)),
        Type::I32 => Value::I32(i32::from_le_bytes(fixed(data)?)),
        Type::Handle => Value::Handle(i32::from_le_bytes(fixed(data)?)),
        Type::U32 => Value::U32(u32::from_le_bytes(fixed(data)?)),
        Type::I64 => Value::I64(i64::from_le_bytes(fixed(data)?)),
        Type::U64 => Value::U64(u64::from_le_bytes(fixed(data)?)),
        Type::Double => Value::Double(u64::from_le_bytes(fixed(data)?)),
        Type::Str => Value::Str(decode_str(data)?.to_owned()),
        Type::ObjectPath => Value::ObjectPath(decode_str(data)?.to_owned()),
        Type::Signature => Value::Signature(decode_str(data)?.to_owned()),
        Type::Variant => {
            let Some(sep) = data.iter().rposition(|&b| b == 0) else {
                return bad("variant without its type separator");
            };
            let type_bytes = &data[sep + 1..];
            if type_bytes.len() > MAX_TYPE_STRING {
                return bad("variant type string too long");
            }
            let type_str = std::str::from_utf8(type_bytes).or(bad("variant type not UTF-8"))?;
            let inner_ty = Type::parse(type_str)?;
            let inner = decode_at(&inner_ty, &data[..sep], budget, depth + 1)?;
            Value::Variant(inner_ty, Box::new(inner))
        }
        Type::Array(e) if **e == Type::Byte => Value::Bytes(data.to_vec()),
        Type::Array(e) => {
            let parts = split_array(e, data, *budget)?;
            let mut items = Vec::with_capacity(parts.len());
            for p in parts {
                items.push(decode_at(e, p, budget, depth + 1)?);
            }
            Value::Array((**e).clone(), items)
        }
        Type::Maybe(e) => {
            if data.is_empty() {
                Value::Maybe((**e).clone(), None)
            } else {
                let inner = if e.fixed_size().is_some() {
                    data
                } else {
                    match data.split_last() {
                        Some((0, rest)) => rest,
                        _ => return bad("maybe value without its trailing NUL"),
                    }
                };
                let v = decode_at(e, inner, budget, depth + 1)?;
                Value::Maybe((**e).clone(), Some(Box::new(v)))
            }
        }
        Type::Tuple(_) | Type::DictEntry(..) => {
            let members = ty.members().unwrap_or_default();
            if members.is_empty() {
                if data != [0] {
                    return bad("unit value that is not one zero byte");
                }
                return Ok(Value::Tuple(Vec::new()));
            }
            let parts = split_tuple(ty, &members, data)?;
            let mut items = Vec::with_capacity(parts.len());
            for (m, p) in members.iter().zip(parts) {
                items.push(decode_at(m, p, budget, depth + 1)?);
            }
            if let Type::DictEntry(..) = ty {
                let mut it = items.into_iter();
                match (it.next(), it.next()) {
                    (Some(k), Some(v)) => Value::DictEntry(Box::new(k), Box::new(v)),
                    _ => return bad("dictionary entry without two members"),
                }
            } else {
                Value::Tuple(items)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Type {
        Type::parse(s).unwrap()
    }

    #[test]
    fn type_strings_round_trip_and_sizes() {
        for s in [
            "(uuua(ayay))",
            "(a(say)a(sayay))",
            "(a{sv}aya(say)sstayay)",
            "aay",
            "mu",
        ] {
            assert_eq!(t(s).to_type_string(), s);
        }
        assert_eq!(t("(uy)").fixed_size(), Some(8));
        assert_eq!(t("(yu)").fixed_size(), Some(8));
        assert_eq!(t("()").fixed_size(), Some(1));
        assert_eq!(t("(ty)").alignment(), 8);
        assert_eq!(t("(ty)").fixed_size(), Some(16));
        assert!(Type::parse("(u").is_err());
        assert!(Type::parse("{vu}").is_err());
        assert!(Type::parse("uu").is_err());
        assert!(Type::parse(&"a".repeat(100)).is_err());
    }

    // Vectors checked against GLib's g_variant_new + g_variant_get_data.
    #[test]
    fn known_encodings() {
        let v = Value::Tuple(vec![Value::Str("a".into()), Value::Bytes(vec![1, 2])]);
        assert_eq!(encode(&t("(say)"), &v).unwrap(), vec![b'a', 0, 1, 2, 2]);
        let arr = Value::Array(
            t("s"),
            vec![Value::Str("hi".into()), Value::Str("x".into())],
        );
        assert_eq!(
            encode(&t("as"), &arr).unwrap(),
            vec![b'h', b'i', 0, b'x', 0, 3, 5]
        );
        let var = Value::Variant(t("u"), Box::new(Value::U32(7)));
        assert_eq!(encode(&t("v"), &var).unwrap(), vec![7, 0, 0, 0, 0, b'u']);
        assert_eq!(
            encode(&t("as"), &Value::Array(t("s"), vec![])).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn decode_round_trips_and_refuses_non_normal() {
        let ty = t("(a{sv}aya(say)sstayay)");
        let v = Value::Tuple(vec![
            Value::Array(
                t("{sv}"),
                vec![Value::DictEntry(
                    Box::new(Value::Str("k".into())),
                    Box::new(Value::Variant(t("t"), Box::new(Value::U64(9)))),
                )],
            ),
            Value::Bytes(vec![]),
            Value::Array(t("(say)"), vec![]),
            Value::Str("subject".into()),
            Value::Str("".into()),
            Value::U64(5),
            Value::Bytes(vec![7; 32]),
            Value::Bytes(vec![8; 32]),
        ]);
        let bytes = encode(&ty, &v).unwrap();
        assert_eq!(decode(&ty, &bytes).unwrap(), v);
        // Any single-byte change is refused or decodes to another value; never a panic.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            if let Ok(other) = decode(&ty, &b) {
                assert_ne!(other, v);
            }
        }
        for n in 0..bytes.len() {
            assert!(decode(&ty, &bytes[..n]).is_err() || n == bytes.len());
        }
    }

    /// Random bytes against every shape OSTree uses and a few more: errors, never panics, and
    /// whatever decodes re-encodes to the same bytes (checked inside `decode`).
    #[test]
    fn random_bytes_never_panic() {
        let types = [
            "(uuua(ayay))",
            "(a(say)a(sayay))",
            "(a{sv}aya(say)sstayay)",
            "(tuuuusa(ayay))",
            "a{sv}",
            "aay",
            "v",
            "av",
            "mv",
            "(yqxd)",
            "ma(s)",
            "a(y)",
            "()",
            "a()",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut decoded = 0;
        for round in 0..20_000 {
            let t = t(types[round % types.len()]);
            let len = (next() % 48) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Bias towards plausible framing: small offsets and NULs.
            for b in data.iter_mut() {
                if next() % 3 == 0 {
                    *b %= 8;
                }
            }
            if let Ok(v) = decode(&t, &data) {
                decoded += 1;
                assert_eq!(encode(&t, &v).unwrap(), data);
            }
        }
        assert!(decoded > 0);
        // Deep variant nesting is bounded, not a stack overflow.
        let mut deep = vec![1u8];
        for _ in 0..10_000 {
            deep.push(0);
            deep.push(b'v');
        }
        assert!(decode(&t("v"), &deep).is_err());
    }

    #[test]
    fn large_containers_use_wider_offsets() {
        let items: Vec<Value> = (0..300).map(|i| Value::Str(format!("{i:04}"))).collect();
        let v = Value::Array(t("s"), items);
        let bytes = encode(&t("as"), &v).unwrap();
        // 300 strings of 5 bytes = 1500 body bytes: two-byte offsets.
        assert_eq!(bytes.len(), 1500 + 600);
        assert_eq!(decode(&t("as"), &bytes).unwrap(), v);
    }
}
