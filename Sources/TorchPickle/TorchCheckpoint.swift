// A pickled PyTorch checkpoint (`.ckpt`, `.pt`, `.pth`, `.bin` as torch.save writes them since 1.6: a zip of
// `<name>/data.pkl` and one `<name>/data/<key>` file per storage), read without unpickling it: the pickle is
// interpreted by `RestrictedUnpickler`, the storages are read from the archive, and every tensor comes out
// as the contiguous tensor `torch.load(weights_only=True)` gives. What A1111 and kohya load as a state dict
// (`sd.get("state_dict", sd)`) is what `stateDict` returns, named by its flattened keys.
import Foundation
import Torch
import ZIPFoundation

public enum TorchCheckpoint {
    /// The tensors of the checkpoint's state dict, by name. Non-tensor entries (step counters, callbacks)
    /// are left out.
    public static func stateDict(_ url: URL) throws -> [String: Tensor] {
        func fail(_ message: String) -> PickleError { PickleError(path: url.path, message: message) }
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw fail("not a zip-format PyTorch checkpoint (older torch.save files, before PyTorch 1.6, are not read): \(error)")
        }
        guard let pickle = archive.first(where: { $0.path.hasSuffix("/data.pkl") || $0.path == "data.pkl" }) else {
            throw fail("no data.pkl inside: not a PyTorch checkpoint")
        }
        let prefix = String(pickle.path.dropLast("data.pkl".count))
        let root = try RestrictedUnpickler(data: try read(archive, pickle, url), path: url.path).load()
        var top = root
        if case .dict(let box) = root, let inner = box.items.first(where: { if case .string("state_dict") = $0.0 { return true }; return false })?.1,
           case .dict = inner {
            top = inner
        }
        var views: [(String, TensorView)] = []
        collect(top, prefix: "", into: &views)
        guard !views.isEmpty else { throw fail("holds no tensors") }
        var storages: [String: Tensor] = [:]
        var out: [String: Tensor] = [:]
        for (name, view) in views {
            let dtype = try dtypeOf(view.storage.dtype, fail)
            let flat: Tensor
            if let cached = storages[view.storage.key] {
                flat = cached
            } else {
                guard let entry = archive["\(prefix)data/\(view.storage.key)"] else {
                    throw fail("storage \(view.storage.key) of \(name) is missing from the archive")
                }
                let bytes = try read(archive, entry, url)
                guard bytes.count % dtype.size == 0 else { throw fail("storage \(view.storage.key) is not a whole number of \(dtype)") }
                flat = try bytes.withUnsafeBytes { try Tensor(bytes: $0, shape: [bytes.count / dtype.size], dtype: dtype) }
                storages[view.storage.key] = flat
            }
            out[name] = try materialize(view, flat, name: name, fail)
        }
        return out
    }

    /// The nested dicts flattened to dotted names, as a state dict's keys already are at the top.
    private static func collect(_ value: PickleValue, prefix: String, into views: inout [(String, TensorView)]) {
        guard case .dict(let box) = value else { return }
        for (key, item) in box.items {
            guard case .string(let k) = key else { continue }
            let name = prefix.isEmpty ? k : "\(prefix).\(k)"
            switch item {
            case .tensor(let view): views.append((name, view))
            case .dict: collect(item, prefix: name, into: &views)
            default: continue
            }
        }
    }

    /// The view as a contiguous tensor: a slice of its storage when it is laid out densely, else gathered.
    private static func materialize(_ view: TensorView, _ flat: Tensor, name: String, _ fail: (String) -> PickleError) throws -> Tensor {
        let count = view.size.reduce(1, *)
        guard view.size.count == view.stride.count else { throw fail("\(name): size and stride differ in rank") }
        var dense = [Int](repeating: 1, count: view.size.count)
        for d in stride(from: view.size.count - 2, through: 0, by: -1) { dense[d] = dense[d + 1] * view.size[d + 1] }
        let last = zip(view.size, view.stride).reduce(view.offset) { $0 + ($1.0 > 0 ? ($1.0 - 1) * $1.1 : 0) }
        guard count == 0 || last < flat.shape[0] else { throw fail("\(name): the view reaches past its storage") }
        if count == 0 { return try flat.narrow(dim: 0, start: 0, length: 0).reshape(view.size) }
        if zip(zip(view.size, view.stride), dense).allSatisfy({ $0.0 == 1 || $0.1 == $1 }) {
            return try flat.narrow(dim: 0, start: view.offset, length: count).reshape(view.size).clone()
        }
        // A strided view (a transposed weight): offset + Σ index_d · stride_d as one broadcast int64 tensor
        // (torch's as_strided, in ops), then one gather.
        var offsets = try Tensor(scalar: Int64(view.offset))
        for (d, (size, stride)) in zip(view.size, view.stride).enumerated() {
            var along = [Int](repeating: 1, count: view.size.count)
            along[d] = size
            let steps = stride == 0 ? try Tensor.zeros([size], dtype: .int64)
                : try Tensor.arange(0, Double(size * stride), step: Double(stride), dtype: .int64)
            offsets = try offsets + steps.reshape(along)
        }
        return try flat.indexSelect(dim: 0, index: offsets.reshape([count])).reshape(view.size)
    }

    private static func dtypeOf(_ storage: String, _ fail: (String) -> PickleError) throws -> DType {
        switch storage {
        case "FloatStorage": return .float32
        case "HalfStorage": return .float16
        case "BFloat16Storage": return .bfloat16
        case "DoubleStorage": return .float64
        case "LongStorage": return .int64
        case "IntStorage": return .int32
        case "ShortStorage": return .int16
        case "CharStorage": return .int8
        case "ByteStorage": return .uint8
        case "BoolStorage": return .bool
        default: throw fail("storage type \(storage) is not read")
        }
    }

    private static func read(_ archive: Archive, _ entry: Entry, _ url: URL) throws -> [UInt8] {
        var data = [UInt8]()
        data.reserveCapacity(Int(entry.uncompressedSize))
        do { _ = try archive.extract(entry, skipCRC32: false) { data += $0 } } catch {
            throw PickleError(path: url.path, message: "\(entry.path) cannot be read: \(error)")
        }
        return data
    }
}
