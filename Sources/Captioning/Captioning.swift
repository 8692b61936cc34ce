// Captioning: BLIP image captioning (ViT + BERT decoder), BertTokenizer, caption variants.
