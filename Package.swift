// swift-tools-version:6.0
import PackageDescription
import Foundation

// libtorch comes from `.libtorch`, a link that scripts/bootstrap.sh points at the venv's torch
// (or at $LIBTORCH). Everything below is resolved from that one place.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let libtorch = "\(root)/.libtorch"
let hasCUDA = FileManager.default.fileExists(atPath: "\(libtorch)/lib/libtorch_cuda.so")

// `--no-as-needed` keeps libtorch_cuda in the binary's needed list although nothing references it
// by symbol: without it the CUDA backend never registers and a GPU machine silently runs on CPU.
var torchLinkFlags = ["-L\(libtorch)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(libtorch)/lib",
                      "-Xlinker", "--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10"]
if hasCUDA { torchLinkFlags += ["-ltorch_cuda", "-lc10_cuda"] }
torchLinkFlags += ["-Xlinker", "--as-needed"]

// ProcessGroupNCCL (multi-GPU training) is libtorch_cuda's; its header needs CUDA's runtime, crt and CCCL headers
// and NCCL's, from pip's nvidia-* packages beside the wheel's torch (scripts/bootstrap.sh installs the two torch
// does not pull in). Without them the shim builds Gloo only, and NCCL is refused with the reason.
let nvidia = "\(libtorch)/../nvidia"
let ncclIncludes = ["\(nvidia)/nccl/include", "\(nvidia)/cu13/include", "\(nvidia)/cu13/include/cccl"]
let hasNCCL = hasCUDA && ["nccl/include/nccl.h", "cu13/include/cuda_runtime_api.h", "cu13/include/crt/host_config.h",
                          "cu13/include/cccl/nv/target"].allSatisfy { FileManager.default.fileExists(atPath: "\(nvidia)/\($0)") }
let ncclFlags = hasNCCL ? ncclIncludes.map { "-I\($0)" } + ["-DINKWELL_NCCL"] : []

let package = Package(
    name: "Inkwell",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "inkwell", targets: ["inkwell"]),
        .executable(name: "inkwell-bench", targets: ["InkwellBench"]),
        .executable(name: "stencil-bench", targets: ["StencilBench"]),
        .library(name: "Torch", targets: ["Torch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Hummingbird's own NIO and logging packages, named for the dashboard's connection handlers
        // (CONNECT, HTTP/0.9).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.14.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        // The Hub client (`inkwell download`); already in the tree through HummingbirdTesting.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "CTorch",
            cxxSettings: [
                .unsafeFlags(["-I\(libtorch)/include", "-I\(libtorch)/include/torch/csrc/api/include",
                              "-D_GLIBCXX_USE_CXX11_ABI=1", "-O2", "-Wno-deprecated-declarations"] + ncclFlags),
                // ProcessGroupGloo.hpp includes Gloo headers the wheel does not ship (see the folder's README).
                .headerSearchPath("gloo_decls"),
            ],
            linkerSettings: [.unsafeFlags(torchLinkFlags)]
        ),
        .target(name: "AtomicFile"),
        .target(name: "CProcess"),
        .target(name: "Torch", dependencies: ["CTorch", "AtomicFile"]),
        .systemLibrary(name: "CImageCodecs", path: "Sources/CImageCodecs"),
        .target(name: "CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "Imaging", dependencies: ["Torch", "CImageCodecs", "CJPEG", "AtomicFile"]),
        .target(name: "HubCache", dependencies: [.product(name: "AsyncHTTPClient", package: "async-http-client"),
                                                 .product(name: "Crypto", package: "swift-crypto"),
                                                 .product(name: "NIOCore", package: "swift-nio"),
                                                 .product(name: "NIOHTTP1", package: "swift-nio")]),
        // Stencils: image to bilevel line art at print size, 1-bit PNG and traced SVG.
        .target(name: "Stencil", dependencies: ["AtomicFile", "Imaging", "Torch"]),
        .target(name: "TorchPickle", dependencies: ["Torch", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .target(name: "StableDiffusion", dependencies: ["AtomicFile", "Torch", "Imaging", "HubCache", "TorchPickle", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "LoRA", dependencies: ["AtomicFile", "Torch", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Captioning", dependencies: ["Torch", "Imaging"]),
        .target(name: "Evaluation", dependencies: ["Torch", "Imaging", "StableDiffusion"]),
        // The run folder's files (config, log, state, checkpoints, samples, pipeline summary): one owner for
        // the trainer that writes them and everything that reads them back.
        .target(name: "RunFiles", dependencies: ["AtomicFile", "Torch", "StableDiffusion", .product(name: "TOMLKit", package: "TOMLKit")]),
        .target(name: "Dashboard", dependencies: ["Imaging", "RunFiles", .product(name: "Hummingbird", package: "hummingbird"),
                                                  .product(name: "HummingbirdCore", package: "hummingbird"),
                                                  .product(name: "Logging", package: "swift-log"),
                                                  .product(name: "NIOCore", package: "swift-nio"),
                                                  .product(name: "NIOHTTPTypes", package: "swift-nio-extras")],
                resources: [.copy("Assets")]),
        .target(name: "Training", dependencies: ["AtomicFile", "CProcess", "HubCache", "Torch", "Imaging", "StableDiffusion", "LoRA", "Captioning", "Evaluation", "RunFiles",
                                                 .product(name: "TOMLKit", package: "TOMLKit"),
                                                 .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "DeviceCheck", dependencies: ["Torch", "Imaging", "StableDiffusion", "LoRA", "Captioning", "Evaluation", "RunFiles", "Training"]),
        .executableTarget(
            name: "inkwell",
            dependencies: ["AtomicFile", "Torch", "Imaging", "HubCache", "TorchPickle", "StableDiffusion", "LoRA", "Captioning", "Evaluation", "RunFiles", "Training", "Dashboard", "DeviceCheck", "Stencil", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "InkwellBench", dependencies: ["Torch", "StableDiffusion", "LoRA"], path: "benchmarks/InkwellBench"),
        .executableTarget(name: "StencilBench", dependencies: ["Imaging", "Stencil", "Training"], path: "benchmarks/StencilBench"),
        .target(name: "TestSupport", dependencies: ["Torch"], path: "Tests/TestSupport"),
        .target(name: "GenerationFixtures", dependencies: ["Imaging", "StableDiffusion", "TestSupport", "Torch"],
                path: "Tests/GenerationFixtures"),
        .testTarget(name: "AtomicFileTests", dependencies: ["AtomicFile"]),
        .testTarget(name: "HubCacheTests", dependencies: ["HubCache", "Imaging", "StableDiffusion", "TestSupport"]),
        .testTarget(name: "TorchPickleTests", dependencies: ["TorchPickle", "Torch", "TestSupport"]),
        .testTarget(name: "TorchTests", dependencies: ["Torch", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"]),
        .testTarget(name: "StencilTests", dependencies: ["Stencil", "Imaging", "Training", "TestSupport"]),
        .testTarget(name: "StableDiffusionTests", dependencies: ["StableDiffusion", "TestSupport", "GenerationFixtures"]),
        .testTarget(name: "LoRATests", dependencies: ["LoRA", "StableDiffusion", "TestSupport", "GenerationFixtures"]),
        .testTarget(name: "CaptioningTests", dependencies: ["Captioning", "TestSupport"]),
        .testTarget(name: "RunFilesTests", dependencies: ["RunFiles", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "RunFiles", "TestSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "TestSupport"]),
        .testTarget(name: "DeviceCheckTests", dependencies: ["DeviceCheck", "RunFiles", "Training", "TestSupport"]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "RunFiles", "StableDiffusion", "Training", "TestSupport",
                                                         .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                         .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
    ],
    cxxLanguageStandard: .cxx17
)
