using CoeffTune.Tests.Checkpoints;
using CoeffTune.Text;

namespace CoeffTune.Tests.Text;

/// <summary>TextTokenizer.Decode: ids back to text as Hugging Face's decode(skip_special_tokens=True) gives it.</summary>
[Collection(RealModelsCollection.Name)]
public sealed class TokenizerDecodeTests(RealModelsFixture models)
{
    [SkippableFact]
    public void Byte_level_bpe_decodes_every_reference_text_back_to_itself()
    {
        // GPT-2's byte-level BPE loses nothing: bytes become tokens and tokens become the same bytes again.
        var folder = models.RequireAsset("gpt2");
        using var tokenizer = TextTokenizer.FromFolder(folder);
        var texts = ReferenceFixtures.Load("bpe-gpt2.json").Select(t => t.Text).Where(t => !t.Contains("<|endoftext|>")).Take(300).ToList();
        var bad = texts.Where(t => tokenizer.Decode(tokenizer.Encode(t)) != t).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} of {texts.Count} texts do not round-trip, e.g. {TerminalText.Quote(bad.FirstOrDefault() ?? "")}");
    }

    [SkippableFact]
    public void Special_tokens_are_left_out()
    {
        var folder = models.RequireAsset("gpt2");
        using var tokenizer = TextTokenizer.FromFolder(folder);
        int eot = tokenizer.TokenId("<|endoftext|>")!.Value;
        Assert.Contains(eot, tokenizer.SpecialIds);
        var ids = tokenizer.Encode(" café, naïve").Prepend(eot).Append(eot).ToArray();
        Assert.Equal(" café, naïve", tokenizer.Decode(ids));
    }
}
