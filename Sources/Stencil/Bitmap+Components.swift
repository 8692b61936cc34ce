// Connected components of a bitmap, for the stencil's clean-up: ink specks smaller than an area become
// paper, and enclosed paper holes up to an area become ink. Ink is 8-connected and paper 4-connected
// (the usual dual pair, so a diagonal chain of ink pixels is one stroke and does not leak paper through).
extension Bitmap {
    /// Turns every ink component of fewer than `area` pixels into paper.
    public mutating func removeSpecks(smallerThan area: Int) {
        guard area > 1 else { return }
        recolourComponents(of: 1, eightConnected: true, touchingBorderAllowed: true, upTo: area - 1)
    }

    /// Turns every paper component of at most `area` pixels that does not touch the border into ink.
    public mutating func fillHoles(upTo area: Int) {
        guard area > 0 else { return }
        recolourComponents(of: 0, eightConnected: false, touchingBorderAllowed: false, upTo: area)
    }

    /// Flood-fills each component of `value` once (marking it 2 while it is visited); a component of at most
    /// `limit` pixels (that, unless allowed, does not touch the border) takes the other value. The pixel list
    /// stops growing past `limit`, so large components cost no memory.
    private mutating func recolourComponents(of value: UInt8, eightConnected: Bool, touchingBorderAllowed: Bool,
                                             upTo limit: Int) {
        let w = width, h = height, visited: UInt8 = 2
        var stack: [Int] = [], members: [Int] = []
        ink.withUnsafeMutableBufferPointer { px in
            for seed in 0..<(w * h) where px[seed] == value {
                px[seed] = visited
                stack.append(seed)
                members.removeAll(keepingCapacity: true)
                var size = 0, touchesBorder = false
                while let p = stack.popLast() {
                    size += 1
                    if size <= limit { members.append(p) }
                    let x = p % w, y = p / w
                    if x == 0 || y == 0 || x == w - 1 || y == h - 1 { touchesBorder = true }
                    for dy in -1...1 {
                        let ny = y + dy
                        guard ny >= 0, ny < h else { continue }
                        for dx in -1...1 where dx != 0 || dy != 0 {
                            if !eightConnected && dx != 0 && dy != 0 { continue }
                            let nx = x + dx
                            guard nx >= 0, nx < w else { continue }
                            let q = ny * w + nx
                            if px[q] == value {
                                px[q] = visited
                                stack.append(q)
                            }
                        }
                    }
                }
                if size <= limit && (touchingBorderAllowed || !touchesBorder) {
                    for p in members { px[p] = 1 - value }
                }
            }
            for i in 0..<(w * h) where px[i] == visited { px[i] = value }
        }
    }
}
