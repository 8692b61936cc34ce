// Shared access to the fixtures of reference/fixtures/clip_model.py.
import Foundation
import Imaging
import TestSupport
import Torch

enum CLIPFixture {
    static let area = "clip_model"

    struct Inputs: Decodable {
        struct PairSet: Decodable {
            let images: [String]
            let prompts: [String]
        }
        let tiny_images: [String]
        let large_images: [String]
        let prompts: [String]
        let sets: [String: PairSet]
        let logit_scale: Double
    }

    /// A folder of the fixture (found through one of its files, so a missing fixture throws).
    static func folder(_ name: String, probe: String = "config.json") throws -> URL {
        try Fixtures.url(area, "\(name)/\(probe)").deletingLastPathComponent()
    }

    static func outputs() throws -> [String: Tensor] { try Fixtures.tensors(area, "outputs") }

    static func inputs() throws -> Inputs {
        try JSONDecoder().decode(Inputs.self, from: Data(contentsOf: Fixtures.url(area, "inputs.json")))
    }

    /// The PNG written by the script, decoded by Imaging (identical to Pillow's decode).
    static func image(_ name: String) throws -> Image {
        try Image.load(Fixtures.url(area, "images/\(name).png"))
    }
}
