//! Just enough of the protobuf wire format to write the two push payloads: varints,
//! fixed-width numbers, strings, packed repeats, and nested messages whose length is
//! written after their body (one byte reserved, moved only for a body of 128 bytes or
//! more).

/// Appends protobuf fields to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    /// A `uint32`/`uint64`/`int64`/`enum`/`bool` field (written even when 0).
    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, VARINT);
        self.varint(v);
    }

    /// A `fixed64` or `sfixed64` field.
    pub(crate) fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, I64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `double` field.
    pub(crate) fn double(&mut self, field: u32, v: f64) {
        self.fixed64(field, v.to_bits());
    }

    /// A `string` or `bytes` field.
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) {
        self.tag(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// A packed `repeated fixed64` (or `double`, as bits) field of `n` values.
    pub(crate) fn packed_fixed64(&mut self, field: u32, n: usize, v: impl Iterator<Item = u64>) {
        self.tag(field, LEN);
        self.varint(n as u64 * 8);
        let at = self.buf.len();
        for x in v.take(n) {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        // Exactly n values, whatever the iterator gave.
        self.buf.resize(at + n * 8, 0);
    }

    /// A nested message: `body` writes its fields; its length goes before them.
    pub(crate) fn message(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        self.tag(field, LEN);
        let at = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - at - 1;
        if len < 0x80 {
            self.buf[at] = len as u8;
            return;
        }
        let mut head = [0u8; 10];
        let mut n = 0;
        let mut v = len as u64;
        while v >= 0x80 {
            head[n] = v as u8 | 0x80;
            v >>= 7;
            n += 1;
        }
        head[n] = v as u8;
        n += 1;
        // One byte was reserved: make room for the rest, then write the length.
        self.buf.splice(at..at + 1, head[..n].iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_fields_and_nested_lengths() {
        let mut w = Writer::default();
        w.uint(1, 300);
        assert_eq!(w.buf, [0x08, 0xac, 0x02]);
        let mut w = Writer::default();
        w.message(2, |w| w.bytes(1, &[7; 200]));
        // tag 2/LEN, length 203 (2 bytes), then tag 1/LEN, length 200 (2 bytes), body.
        assert_eq!(&w.buf[..6], [0x12, 0xcb, 0x01, 0x0a, 0xc8, 0x01]);
        assert_eq!(w.buf.len(), 3 + 203);
        let mut w = Writer::default();
        w.message(1, |w| w.message(1, |_| {}));
        assert_eq!(w.buf, [0x0a, 0x02, 0x0a, 0x00]);
        let mut w = Writer::default();
        w.packed_fixed64(6, 2, [1u64, 2].into_iter());
        assert_eq!(w.buf[..2], [0x32, 16]);
    }
}
