// Captioning: BLIP image captioning as transformers 5.23.0 runs it. `BlipCaptioner` (BlipProcessor.swift)
// takes RGB image tensors to caption strings through `BlipImageProcessor`, `BlipForConditionalGeneration`
// (`BlipVisionModel` + `BlipTextLMHeadModel`, greedy or beam search in BeamSearch.swift) and `BertTokenizer`.
