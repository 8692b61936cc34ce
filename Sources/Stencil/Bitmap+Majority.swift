// Edge smoothing of a thresholded bitmap: each pixel takes the majority of its 3 × 3 neighbourhood
// (ink where at least 5 of the 9 pixels are ink; outside the bitmap is paper). Paper grain and graphite
// texture leave single-pixel bumps and notches along a threshold's edges; the vote flattens them (and
// drops lines one pixel thin, which no stencil transfer would hold anyway) while strokes two pixels wide
// or more keep their width. Clean edges also trace into fewer, truer curves.
extension Bitmap {
    public func majoritySmoothed() -> Bitmap {
        let w = width, h = height
        var out = self
        ink.withUnsafeBufferPointer { px in
            out.ink.withUnsafeMutableBufferPointer { target in
                for y in 0..<h {
                    for x in 0..<w {
                        var count = 0
                        for ny in max(0, y - 1)...min(h - 1, y + 1) {
                            let row = ny * w
                            for nx in max(0, x - 1)...min(w - 1, x + 1) { count += Int(px[row + nx]) }
                        }
                        target[y * w + x] = count >= 5 ? 1 : 0
                    }
                }
            }
        }
        return out
    }
}
