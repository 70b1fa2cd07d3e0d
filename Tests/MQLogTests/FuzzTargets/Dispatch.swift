// The fuzz targets' dispatch: one input drives one of several decoders.
// Shared by the libFuzzer target (Fuzz/, whose Sources/MQFuzzTargets is a
// link to this directory) and by `swift test` (FuzzRegressionTests replays
// every saved crash in Fuzz/crashes through it). docs/TESTING.md.
//
// One input drives one of several decoders:
//
//   byte 0   the target, `Target(rawValue: byte % Target.allCases.count)`
//   byte 1   flags: bit 0 asks the harness to recompute every checksum the
//            target's format has before decoding (so mutations get past the
//            CRC checks); the other bits are target parameters
//   rest     the target's bytes
//
// Every target also checks what must hold for any input (a rewritten batch
// decodes to the records kept, an encoded state decodes to itself, a codec
// round-trips): a violation is reported as a crash like a trap is.

import Glibc
@testable import MQLog

/// Runs one input through the target its first byte selects. The fuzzer's
/// entry point (Fuzz/Sources/mq-fuzz) and the regression test over the saved
/// crashes (FuzzRegressionTests) both call this.
@discardableResult
public func runFuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard size >= 2, let data else { return 0 }
    let target = onlyTarget ?? Target(rawValue: Int(data[0]) % Target.allCases.count)!
    let flags = data[1]
    var payload = [UInt8](UnsafeBufferPointer(start: data + 2, count: size - 2))
    let input = FuzzInput(fixChecksums: flags & 1 != 0, parameter: flags >> 1)
    switch target {
    case .batches: Targets.batches(&payload, input)
    case .rewrite: Targets.rewrite(&payload, input)
    case .gzip: Targets.codec(.gzip, payload, input)
    case .snappy: Targets.codec(.snappy, payload, input)
    case .lz4: Targets.codec(.lz4, payload, input)
    case .zstd: Targets.codec(.zstd, payload, input)
    case .uncompressed: Targets.codec(.none, payload, input)
    case .head: Targets.head(&payload, input)
    case .committedOffsets: Targets.committedOffsets(&payload, input)
    case .queueState: Targets.queueState(&payload, input)
    case .swapJournal: Targets.swapJournal(&payload, input)
    case .copyState: Targets.copyState(&payload, input)
    case .partition: Targets.partition(&payload, input)
    case .dedupStore: Targets.dedupStore(&payload, input)
    }
    return 0
}

/// The targets, by the value of an input's first byte (modulo their number).
/// Append new ones at the end: the seed corpus and saved crashes name them by number.
enum Target: Int, CaseIterable {
    case batches = 0
    case rewrite = 1
    case gzip = 2
    case snappy = 3
    case lz4 = 4
    case zstd = 5
    case uncompressed = 6
    case head = 7
    case committedOffsets = 8
    case queueState = 9
    case swapJournal = 10
    case copyState = 11
    case partition = 12
    case dedupStore = 13
}

/// `MQ_FUZZ_TARGET=<name>` (a `Target` case) sends every input to that
/// target, whatever its first byte: to fuzz one decoder, or time it.
let onlyTarget: Target? = {
    guard let name = getenv("MQ_FUZZ_TARGET").map({ String(cString: $0) }), !name.isEmpty else { return nil }
    guard let t = Target.allCases.first(where: { "\($0)" == name }) else {
        fatalError("MQ_FUZZ_TARGET=\(name): not one of \(Target.allCases.map { "\($0)" }.joined(separator: ", "))")
    }
    return t
}()

struct FuzzInput {
    var fixChecksums: Bool
    /// The seven other bits of the flags byte.
    var parameter: UInt8
}

/// A broken invariant: reported to libFuzzer as a crash, with a message.
func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}
