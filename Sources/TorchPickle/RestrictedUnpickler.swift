// A pickle reader for what torch.save writes and nothing else: it builds values (numbers, strings, tuples,
// lists, dicts), storages and tensor views, and resolves only the globals a state dict needs. Any other
// global (os.system, builtins.eval, a class's constructor) is refused by name when it is named, before
// anything could be called, as A1111's safe unpickler and the safetensors convert tool do. Nothing is ever
// executed: REDUCE on an allowed global is interpreted here, never run.
import Foundation

/// A value the unpickler builds. Lists and dicts are boxes, since pickle fills them after memoizing them.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(ListBox)
    case dict(DictBox)
    case global(String)
    case storage(StorageRef)
    case tensor(TensorView)
    /// An inert object kept only so that its container loads (a training callback's saved state).
    case opaque(String)

    final class ListBox { var items: [PickleValue] = [] }
    final class DictBox { var items: [(PickleValue, PickleValue)] = [] }
}

/// A storage in the archive: `data/<key>`, of `dtype` (torch's storage class name).
struct StorageRef {
    var key: String
    var dtype: String
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, …)`: a strided view of a storage.
struct TensorView {
    var storage: StorageRef
    var offset: Int
    var size: [Int]
    var stride: [Int]
}

public struct PickleError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

struct RestrictedUnpickler {
    /// The storage classes torch writes, by the dtype their data holds.
    static let storageTypes: Set<String> = [
        "torch FloatStorage", "torch HalfStorage", "torch BFloat16Storage", "torch DoubleStorage",
        "torch LongStorage", "torch IntStorage", "torch ShortStorage", "torch CharStorage", "torch ByteStorage",
        "torch BoolStorage",
    ]
    /// Globals a state dict needs, interpreted here (never called).
    static let allowed: Set<String> = storageTypes.union([
        "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter", "collections OrderedDict",
        "torch._utils _rebuild_tensor", "builtins set", "__builtin__ set",
    ])
    /// Classes whose saved state old checkpoints carry (sd-v1-4.ckpt's Lightning callback): kept as inert.
    static let inert: Set<String> = ["pytorch_lightning.callbacks.model_checkpoint ModelCheckpoint"]

    let data: [UInt8]
    let path: String

    func load() throws -> PickleValue {
        var stack: [PickleValue] = []
        var marks: [Int] = []
        var memo: [Int: PickleValue] = [:]
        var i = 0
        func fail(_ message: String) -> PickleError { PickleError(path: path, message: message) }
        func byte() throws -> UInt8 {
            guard i < data.count else { throw fail("truncated pickle") }
            defer { i += 1 }
            return data[i]
        }
        func bytes(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, i + n <= data.count else { throw fail("truncated pickle") }
            defer { i += n }
            return data[i..<(i + n)]
        }
        func uint(_ n: Int) throws -> Int {
            try bytes(n).reversed().reduce(0) { $0 << 8 | Int($1) }
        }
        func line() throws -> String {
            guard let end = data[i...].firstIndex(of: 0x0A) else { throw fail("truncated pickle") }
            defer { i = end + 1 }
            return String(decoding: data[i..<end], as: UTF8.self)
        }
        func pop() throws -> PickleValue {
            guard let v = stack.popLast() else { throw fail("stack underflow") }
            return v
        }
        func popMark() throws -> [PickleValue] {
            guard let mark = marks.popLast(), mark <= stack.count else { throw fail("MARK missing") }
            defer { stack.removeSubrange(mark...) }
            return Array(stack[mark...])
        }
        func global(_ name: String) throws -> PickleValue {
            if Self.allowed.contains(name) { return .global(name) }
            if Self.inert.contains(name) { return .opaque(name) }
            throw fail("refused the global '\(name.replacingOccurrences(of: " ", with: "."))': a checkpoint holds tensors, not code, "
                + "so this file is not a plain checkpoint (it could run code if unpickled by PyTorch); nothing was executed")
        }
        func setItems(_ target: PickleValue, _ pairs: [PickleValue]) throws {
            guard case .dict(let box) = target, pairs.count % 2 == 0 else { throw fail("SETITEMS on a non-dict") }
            for k in stride(from: 0, to: pairs.count, by: 2) { box.items.append((pairs[k], pairs[k + 1])) }
        }
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                                 // PROTO
            case 0x95: _ = try bytes(8)                                               // FRAME
            case 0x2E: return try pop()                                               // STOP
            case 0x28: marks.append(stack.count)                                      // MARK
            case 0x7D: stack.append(.dict(PickleValue.DictBox()))                     // EMPTY_DICT
            case 0x5D: stack.append(.list(PickleValue.ListBox()))                     // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                                       // EMPTY_TUPLE
            case 0x4E: stack.append(.none)                                            // NONE
            case 0x88: stack.append(.bool(true))                                      // NEWTRUE
            case 0x89: stack.append(.bool(false))                                     // NEWFALSE
            case 0x4B: stack.append(.int(Int64(try byte())))                          // BININT1
            case 0x4D: stack.append(.int(Int64(try uint(2))))                         // BININT2
            case 0x4A: stack.append(.int(Int64(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x8A:                                                                // LONG1
                let n = Int(try byte())
                let raw = Array(try bytes(n))
                guard n <= 8 else { throw fail("integer wider than 64 bits") }
                var v: Int64 = 0
                for (k, b) in raw.enumerated() { v |= Int64(b) << (8 * k) }
                if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * n) }
                stack.append(.int(v))
            case 0x47:                                                                // BINFLOAT (big-endian)
                stack.append(.float(Double(bitPattern: try bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x58: stack.append(.string(String(decoding: try bytes(try uint(4)), as: UTF8.self)))  // BINUNICODE
            case 0x8C: stack.append(.string(String(decoding: try bytes(Int(try byte())), as: UTF8.self))) // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(String(decoding: try bytes(try uint(8)), as: UTF8.self)))  // BINUNICODE8
            case 0x43: stack.append(.bytes(Array(try bytes(Int(try byte())))))     // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try bytes(try uint(4)))))          // BINBYTES
            case 0x71: memo[Int(try byte())] = stack.last                            // BINPUT
            case 0x72: memo[try uint(4)] = stack.last                                // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                                 // MEMOIZE
            case 0x68, 0x6A:                                                         // BINGET, LONG_BINGET
                let key = op == 0x68 ? Int(try byte()) : try uint(4)
                guard let v = memo[key] else { throw fail("memo \(key) missing") }
                stack.append(v)
            case 0x74: stack.append(.tuple(try popMark()))                           // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                             // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b])) // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c])) // TUPLE3
            case 0x61:                                                               // APPEND
                let v = try pop()
                guard case .list(let box)? = stack.last else { throw fail("APPEND on a non-list") }
                box.items.append(v)
            case 0x65:                                                               // APPENDS
                let items = try popMark()
                guard case .list(let box)? = stack.last else { throw fail("APPENDS on a non-list") }
                box.items += items
            case 0x73: let v = try pop(), k = try pop(); try setItems(stack.last ?? .none, [k, v]) // SETITEM
            case 0x75: let items = try popMark(); try setItems(stack.last ?? .none, items)         // SETITEMS
            case 0x63:                                                               // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                stack.append(try global("\(module) \(name)"))
            case 0x93:                                                               // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs strings") }
                stack.append(try global("\(module) \(name)"))
            case 0x51:                                                               // BINPERSID
                stack.append(try persistent(try pop(), fail))
            case 0x52:                                                               // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args, fail))
            case 0x81:                                                               // NEWOBJ
                let args = try pop(), cls = try pop()
                stack.append(try reduce(cls, args, fail))
            case 0x62:                                                               // BUILD: state of an inert object
                let state = try pop()
                guard let target = stack.last else { throw fail("BUILD on an empty stack") }
                switch target {
                case .opaque: break
                case .dict(let box): if case .dict(let s) = state { box.items += s.items }
                case .tensor: break   // a tensor's extra attributes (names, hooks) are not weights
                default: throw fail("BUILD on an object this reader does not build")
                }
            default:
                throw fail(String(format: "pickle opcode 0x%02x is not one torch.save writes for a state dict", op))
            }
        }
    }

    /// ('storage', storage class, key, location, numel): a storage in data/<key>.
    private func persistent(_ id: PickleValue, _ fail: (String) -> PickleError) throws -> PickleValue {
        guard case .tuple(let parts) = id, parts.count >= 3, case .string("storage") = parts[0],
              case .global(let type) = parts[1], Self.storageTypes.contains(type), case .string(let key) = parts[2] else {
            throw fail("a persistent id that is not a torch storage")
        }
        return .storage(StorageRef(key: key, dtype: String(type.dropFirst("torch ".count))))
    }

    /// An allowed global applied to its arguments, interpreted.
    private func reduce(_ callable: PickleValue, _ args: PickleValue, _ fail: (String) -> PickleError) throws -> PickleValue {
        guard case .tuple(let a) = args else { throw fail("REDUCE arguments are not a tuple") }
        switch callable {
        case .opaque(let name): return .opaque(name)
        case .global("collections OrderedDict"):
            let dict = PickleValue.DictBox()
            if case .list(let pairs)? = a.first {
                for pair in pairs.items { if case .tuple(let kv) = pair, kv.count == 2 { dict.items.append((kv[0], kv[1])) } }
            }
            return .dict(dict)
        case .global("builtins set"), .global("__builtin__ set"):
            return .list(PickleValue.ListBox())
        case .global("torch._utils _rebuild_tensor_v2"), .global("torch._utils _rebuild_tensor"):
            guard a.count >= 4, case .storage(let storage) = a[0], case .int(let offset) = a[1],
                  case .tuple(let size) = a[2], case .tuple(let stride) = a[3] else {
                throw fail("_rebuild_tensor_v2 with arguments that are not (storage, offset, size, stride, …)")
            }
            func ints(_ values: [PickleValue]) throws -> [Int] {
                try values.map { guard case .int(let v) = $0, v >= 0 else { throw fail("a tensor size or stride is not a count") }; return Int(v) }
            }
            return .tensor(TensorView(storage: storage, offset: Int(offset), size: try ints(size), stride: try ints(stride)))
        case .global("torch._utils _rebuild_parameter"):
            guard case .tensor? = a.first else { throw fail("_rebuild_parameter without a tensor") }
            return a[0]
        default:
            throw fail("REDUCE on a value this reader does not build")
        }
    }
}
