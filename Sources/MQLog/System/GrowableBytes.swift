import Glibc

/// A growable, owned run of bytes with cheap appends.
///
/// The batch builder, the compressors and the output writers all append into
/// one of these; it exposes its storage as raw pointers so the hot paths do no
/// per-byte bounds checks. Not thread-safe: one owner at a time.
public final class GrowableBytes: @unchecked Sendable {
    public private(set) var base: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    /// Bytes in use, from `base`.
    public var count: Int

    public init(capacity: Int = 4096) {
        self.capacity = max(capacity, 16)
        self.base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
        self.count = 0
    }

    deinit { base.deallocate() }

    /// Makes room for `extra` more bytes past `count`.
    @inline(__always)
    public func reserve(_ extra: Int) {
        if count &+ extra > capacity { grow(count + extra) }
    }

    @inline(never)
    private func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Empties the storage and makes it hold exactly `total` bytes rounded up
    /// to whole pages: for a buffer that is filled to a size known in
    /// advance (a reader's next read), where doubling would leave up to half
    /// of it never used, yet faulted in and cleared by the kernel.
    public func clear(resizingTo total: Int) {
        count = 0
        let wanted = (max(total, 16) + 4095) & ~4095
        guard wanted != capacity else { return }
        base.deallocate()
        capacity = wanted
        base = UnsafeMutableRawPointer.allocate(byteCount: wanted, alignment: 16)
    }

    /// Drops the contents; shrinks storage that grew past `keep` bytes, so one
    /// huge message does not pin memory for the rest of a run.
    public func clear(shrinkingTo keep: Int = Int.max) {
        count = 0
        if capacity > keep && keep >= 16 {
            base.deallocate()
            capacity = keep
            base = UnsafeMutableRawPointer.allocate(byteCount: keep, alignment: 16)
        }
    }

    @inline(__always)
    public func append(_ pointer: UnsafeRawPointer, count n: Int) {
        reserve(n)
        (base + count).copyMemory(from: pointer, byteCount: n)
        count &+= n
    }

    @inline(__always)
    public func append(_ bytes: UnsafeRawBufferPointer) {
        if let p = bytes.baseAddress, bytes.count > 0 { append(p, count: bytes.count) }
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public func append(_ string: String) {
        var s = string
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    public func append(byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// Appends `value` big-endian (Kafka's wire order).
    @inline(__always)
    public func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        base.storeBytes(of: value.bigEndian, toByteOffset: count, as: T.self)
        count &+= MemoryLayout<T>.size
    }

    /// Writes `value` big-endian at `position`, which must be inside `count`.
    @inline(__always)
    public func setBigEndian<T: FixedWidthInteger>(_ value: T, at position: Int) {
        precondition(position >= 0 && position + MemoryLayout<T>.size <= count)
        base.storeBytes(of: value.bigEndian, toByteOffset: position, as: T.self)
    }

    /// Appends a zig-zag varint (Kafka `varint`, used for 32-bit fields).
    @inline(__always)
    public func appendVarint(_ value: Int32) {
        appendVarlong(Int64(value))
    }

    /// Appends a zig-zag varlong (Kafka `varlong`).
    @inline(__always)
    public func appendVarlong(_ value: Int64) {
        reserve(10)
        count = storeVarlong(value, at: base + count) - base
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// A copy of the contents as an array.
    public var array: [UInt8] { [UInt8](bytes) }

    /// Removes the first `n` bytes, moving the rest down.
    public func removeFirst(_ n: Int) {
        precondition(n <= count)
        if n == count { count = 0; return }
        memmove(base, base + n, count - n)
        count -= n
    }
}

/// Writes `value` as a zig-zag varlong (Kafka `varlong`, at most 10 bytes)
/// at `p`, which must have room; returns the address after it.
@inline(__always)
public func storeVarlong(_ value: Int64, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
    var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
    var p = p
    while v >= 0x80 {
        p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, as: UInt8.self)
        p += 1
        v >>= 7
    }
    p.storeBytes(of: UInt8(truncatingIfNeeded: v), as: UInt8.self)
    return p + 1
}

/// Bytes needed for a zig-zag varlong.
@inline(__always)
public func varlongSize(_ value: Int64) -> Int {
    var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
    var n = 1
    while v >= 0x80 { v >>= 7; n &+= 1 }
    return n
}
