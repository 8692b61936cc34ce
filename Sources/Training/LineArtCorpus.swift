// A generated, captioned line-art corpus that a tiny text-to-image model can learn from: black outlines
// of simple shapes on white, in counts and positions its captions name ("two rings", "a star in the top
// left"). The stroke is a parameter, so the same motifs drawn thin (what the demo's base model learns) and
// bold (what its LoRAs teach) differ only in the style a LoRA should pick up.
import Foundation
import Imaging
import Torch

public enum LineArtCorpus {
    /// The shapes the corpus draws; each is an outline of the stroke's width.
    public enum Shape: String, CaseIterable, Sendable {
        case ring, square, triangle, star, cross

        var plural: String { self == .cross ? "crosses" : rawValue + "s" }
    }

    /// Where a lone shape sits; two or three shapes stand in a row across the middle.
    public enum Position: String, CaseIterable, Sendable {
        case centre = "in the centre"
        case topLeft = "in the top left", topRight = "in the top right"
        case bottomLeft = "in the bottom left", bottomRight = "in the bottom right"

        /// The shape's centre as a fraction of the canvas.
        var anchor: (x: Double, y: Double) {
            switch self {
            case .centre: (0.5, 0.5)
            case .topLeft: (0.3, 0.3)
            case .topRight: (0.7, 0.3)
            case .bottomLeft: (0.3, 0.7)
            case .bottomRight: (0.7, 0.7)
            }
        }
    }

    /// Line weight: half the stroke's width as a fraction of the canvas side.
    public enum Stroke: String, Sendable {
        case thin, bold

        var halfWidth: Double { self == .thin ? 0.018 : 0.04 }
    }

    /// One drawing's content, from which its image and caption both follow.
    public struct Scene: Equatable, Sendable {
        public var shape: Shape
        public var count: Int
        /// Only for a lone shape.
        public var position: Position?

        public var caption: String {
            let number = ["a", "two", "three"][count - 1]
            let noun = count == 1 ? shape.rawValue : shape.plural
            return [number, noun, position?.rawValue].compactMap { $0 }.joined(separator: " ")
        }
    }

    /// Every scene the corpus can draw: each shape alone in each position, and two and three in a row (35).
    public static var allScenes: [Scene] {
        Shape.allCases.flatMap { shape in
            [1, 2, 3].flatMap { count in
                (count == 1 ? Position.allCases.map(Optional.some) : [nil]).map { Scene(shape: shape, count: count, position: $0) }
            }
        }
    }

    /// The words of every caption the corpus can write (for a tokenizer that keeps each one token).
    public static var vocabulary: [String] {
        Array(Set(allScenes.flatMap { $0.caption.split(separator: " ").map(String.init) } + ["bold", "outlines"])).sorted()
    }

    /// `count` different scenes (at most all of them) in an order deterministic in `seed`: a small training set
    /// without the duplicates that random draws from 35 scenes would have.
    public static func distinctScenes(count: Int, seed: UInt64) throws -> [Scene] {
        let all = allScenes
        let order = try Tensor.randperm(all.count, generator: try Generator(seed: seed)).toArray(Int.self)
        return order.prefix(count).map { all[$0] }
    }

    /// `count` scenes, deterministic in `seed`: a shape, one to three of it, and a position when alone.
    public static func scenes(count: Int, seed: UInt64) throws -> [Scene] {
        let g = try Generator(seed: seed)
        let draws = try Tensor.rand([count, 3], dtype: .float64, generator: g).toArray(Double.self)
        return (0..<count).map { i in
            let shape = Shape.allCases[min(Shape.allCases.count - 1, Int(draws[3 * i] * Double(Shape.allCases.count)))]
            // Lone shapes are half the corpus, so every position is seen often.
            let n = draws[3 * i + 1] < 0.5 ? 1 : (draws[3 * i + 1] < 0.75 ? 2 : 3)
            let position = n == 1 ? Position.allCases[min(4, Int(draws[3 * i + 2] * 5))] : nil
            return Scene(shape: shape, count: n, position: position)
        }
    }

    /// The scene drawn on a `size`² white canvas as an RGB image.
    public static func draw(_ scene: Scene, size: Int, stroke: Stroke) throws -> Image {
        let s = Double(size), w = stroke.halfWidth * s
        let coords = try Tensor.arange(0, s, dtype: .float32) + 0.5
        let xs = try coords.view([1, size]), ys = try coords.view([size, 1])
        let centres: [(Double, Double)]
        let radius: Double
        switch scene.count {
        case 1:
            let a = (scene.position ?? .centre).anchor
            centres = [(a.x, a.y)]
            radius = scene.position == .centre || scene.position == nil ? 0.3 : 0.17
        case 2: centres = [(0.28, 0.5), (0.72, 0.5)]; radius = 0.17
        default: centres = [(0.18, 0.5), (0.5, 0.5), (0.82, 0.5)]; radius = 0.12
        }
        var ink: Tensor?
        for (cx, cy) in centres {
            let mask = try outline(scene.shape, dx: xs - cx * s, dy: ys - cy * s, radius: radius * s, halfWidth: w)
            ink = try ink.map { try $0.logicalOr(mask) } ?? mask
        }
        guard let ink else { throw TorchError.invalidArgument("a scene needs at least one shape") }
        let gray = try Tensor.where(ink, Tensor.full([1], 0), Tensor.full([1], 1))
        return try Image(tensor: try gray.unsqueeze(0).expand([3, size, size]), range: .unit)
    }

    /// The ink mask [size, size] of one shape's outline around (0, 0) in the offsets `dx`, `dy`.
    static func outline(_ shape: Shape, dx: Tensor, dy: Tensor, radius r: Double, halfWidth w: Double) throws -> Tensor {
        switch shape {
        case .ring:
            return try ((dx.square() + dy.square()).sqrt() - r * 0.85).abs().lt(w)
        case .square:
            return try (dx.abs().maximum(dy.abs()) - r * 0.75).abs().lt(w)
        case .triangle:
            // A regular polygon is max over its edge normals of the offset's projection; apex up, base flat.
            var support: Tensor?
            for k in 0..<3 {
                let theta = Double.pi / 2 + 2 * Double.pi * Double(k) / 3
                let p = try dx * cos(theta) + dy * sin(theta)
                support = try support.map { try $0.maximum(p) } ?? p
            }
            guard let support else { throw TorchError.invalidArgument("no triangle edges") }
            return try (support - r * 0.5).abs().lt(w)
        case .star:
            // Five points: the radius runs as a triangle wave between the tips and the notches, tip up.
            let distance = try (dx.square() + dy.square()).sqrt()
            let phase = try ((dy.atan2(dx) + Double.pi / 2) * (5 / (2 * Double.pi))).remainder(1)
            let tips = try ((phase - 0.5).abs() * 2)
            let rho = try tips * (r * 0.6) + r * 0.4
            return try (distance - rho).abs().lt(w * 1.2)
        case .cross:
            let arm = r * 0.85
            let vertical = try dx.abs().lt(w).logicalAnd(dy.abs().lt(arm))
            let horizontal = try dy.abs().lt(w).logicalAnd(dx.abs().lt(arm))
            return try vertical.logicalOr(horizontal)
        }
    }

    /// `count` drawings with their captions (`suffix` appended, e.g. ", bold outlines").
    public static func make(count: Int, size: Int, seed: UInt64, stroke: Stroke = .thin,
                            suffix: String = "") throws -> [SyntheticLineArt.Item] {
        try make(count: count, size: size, seed: seed, boldFraction: stroke == .bold ? 1 : 0, suffix: suffix)
    }

    /// The same scenes with `boldFraction` of them drawn bold, spread evenly through the list.
    public static func make(count: Int, size: Int, seed: UInt64, boldFraction: Double,
                            suffix: String = "") throws -> [SyntheticLineArt.Item] {
        try draw(try scenes(count: count, seed: seed), size: size, boldFraction: boldFraction, suffix: suffix)
    }

    /// `scenes` drawn with `boldFraction` of them bold, spread evenly through the list, and captioned.
    public static func draw(_ scenes: [Scene], size: Int, boldFraction: Double, suffix: String = "") throws -> [SyntheticLineArt.Item] {
        try scenes.enumerated().map { i, scene in
            let bold = (Double(i + 1) * boldFraction).rounded(.down) > (Double(i) * boldFraction).rounded(.down)
            return SyntheticLineArt.Item(image: try draw(scene, size: size, stroke: bold ? .bold : .thin), caption: scene.caption + suffix)
        }
    }
}
