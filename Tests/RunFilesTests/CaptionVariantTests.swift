// Caption variant names as users type them, and the dataset folders they map to.
import Testing
import RunFiles

@Suite struct CaptionVariantTests {
    @Test func variantsNamesAndFolders() {
        #expect(CaptionVariant(name: "blip_plus") == .blipPlus && CaptionVariant(name: "BLIP+") == .blipPlus)
        #expect(CaptionVariant(name: "vanilla") == .vanilla && CaptionVariant(name: "blip") == .blip)
        #expect(CaptionVariant(name: "clip") == nil)
        #expect(CaptionVariant.vanilla.folderName == nil)
        #expect(CaptionVariant.blip.folderName == "captions_blip" && CaptionVariant.blipPlus.folderName == "captions_blip_plus")
        #expect(CaptionVariant.defaultPrompt == "minimal line-art tattoo, stencil, high-contrast")
    }
}
