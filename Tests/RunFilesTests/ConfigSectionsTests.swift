// config.toml for display, read with TOMLKit: any TOML shows (not only what this version's TrainingConfig
// decodes), values keep their types, and what JSON cannot carry is shown as text.
import Testing
@testable import RunFiles

@Suite struct ConfigSectionsTests {
    @Test func readsTheTrainersTOML() throws {
        let text = """
        title = "top # not a comment"
        [data]
        captions = "blip_plus"   # a comment
        flip = false
        resolution = 512
        [samples]
        guidance = 7.5
        prompts = [
            "a \\"quoted\\" rose",
            'literal \\ path',
        ]
        seeds = [1, 2, 3]
        nested = [[1, 2], ["a"]]
        weird = 1979-05-27T07:32:00Z
        far = inf
        [output]
        big = 1_000
        """
        let config = try #require(ConfigSections(toml: text))
        #expect(Set(config.sections.map(\.name)) == ["", "data", "samples", "output"])
        #expect(config.sections.first?.name == "")
        #expect(config["", "title"] == .string("top # not a comment"))
        #expect(config["data", "captions"] == .string("blip_plus"))
        #expect(config["data", "flip"] == .bool(false))
        #expect(config["data", "resolution"] == .number(512))
        #expect(config["samples", "guidance"] == .number(7.5))
        #expect(config["samples", "prompts"] == .array([.string("a \"quoted\" rose"), .string("literal \\ path")]))
        #expect(config["samples", "seeds"] == .array([.number(1), .number(2), .number(3)]))
        #expect(config["samples", "nested"] == .array([.array([.number(1), .number(2)]), .array([.string("a")])]))
        #expect(config["samples", "weird"] == .raw("1979-05-27T07:32:00Z"))
        #expect(config["samples", "far"] == .raw("inf"))
        #expect(config["output", "big"] == .number(1000))
        #expect(ConfigSections(toml: "[data\n") == nil)
    }

    @Test func showsEveryKeyOfAResolvedConfig() throws {
        var written = TrainingConfig()
        written.model.path = "models/sd15"
        written.samples.sampler = .eulerA
        let config = try #require(ConfigSections(toml: try written.toml()))
        #expect(config["samples", "sampler"] == .string("euler-a"))
        #expect(config["training", "mixed_precision"] == .string("no"))
        #expect(config["schedule", "name"] == .string("cosine"))
        #expect(config["model", "path"] == .string("models/sd15"))
        #expect(config.sections.map(\.name) == TrainingConfig.schema.keys.sorted())
    }
}
