using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;
using CoeffTune.Data;
using CoeffTune.Text;

namespace CoeffTune.Tests.Text;

public sealed class BpeTrainerTests : IDisposable
{
    private readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    // Ids: <s> 0, <pad> 1, </s> 2, <unk> 3, byte b at 4 + b, merge k at 260 + k, <mask> last.
    private static int Byte(char c) => 4 + c;

    [Fact]
    public void Merges_on_a_tiny_corpus_are_the_hand_counted_ones()
    {
        // Pieces: "aaab", "Ġaaab", "Ġab". Pair counts: (a,a) 4, (a,b) 3, (Ġ,a) 2 -> merge "a a"; the words become
        // [aa a b], [Ġ aa a b], [Ġ a b]: (a,b) 3 -> "a b"; then [aa ab] twice -> "aa ab"; then (Ġ,aaab) and (Ġ,ab)
        // occur once each, and a pair seen once is never merged, so training stops after three merges.
        var bpe = BpeTrainer.Train(["aaab aaab ab"], vocabSize: 300);
        Assert.Equal([("a", "a"), ("a", "b"), ("aa", "ab")], bpe.Merges);
        Assert.Equal(4 + 256 + 3 + 1, bpe.VocabSize);
        Assert.Equal(263, bpe.Vocab["<mask>"]);
        // "aaab ab": aaab (merge 2, id 262), Ġ (space byte 32, id 36), ab (merge 1, id 261).
        Assert.Equal([0, 262, 36, 261, 2], bpe.Encode("aaab ab"));
        // Ties go to the pair first in ordinal order: in "abc", "Ġabc" the pairs (a,b) and (b,c) both occur twice.
        var tie = BpeTrainer.Train(["abc abc"], vocabSize: 262);
        Assert.Equal([("a", "b")], tie.Merges);
    }

    [Fact]
    public void Hugging_face_runs_the_saved_tokenizer_with_the_hand_counted_ids()
    {
        var bpe = BpeTrainer.Train(["aaab aaab ab"], vocabSize: 300);
        bpe.Save(dir.Path, modelMaxLength: 64);
        Assert.True(File.Exists(Path.Combine(dir.Path, "tokenizer.json")));
        using var tokenizer = TextTokenizer.FromFolder(dir.Path);
        Assert.Equal("tokenizer.json", Path.GetFileName(tokenizer.Source));
        Assert.Equal([0, 262, 36, 261, 2], tokenizer.Encode("aaab ab"));
        Assert.Equal([0, Byte('x'), 2], tokenizer.Encode("x"));
        Assert.Equal(1, tokenizer.PadId);
        Assert.Equal(264, tokenizer.VocabSize);
        Assert.Equal("aaab ab", tokenizer.Decode(tokenizer.Encode("aaab ab")));
    }

    [SkippableFact]
    public void A_tokenizer_trained_on_brown_and_spam_text_encodes_as_hugging_face_does_and_decodes_back()
    {
        var brown = TaskCatalog.Brown(Require(DatasetAssets.Brown)).TextTrain.Texts.Take(300);
        var spam = TaskCatalog.Spam(Require(DatasetAssets.Spam)).TextTrain.Texts.Take(200);
        var corpus = brown.Concat(spam).ToList();
        var bpe = BpeTrainer.Train(corpus, vocabSize: 2000);
        Assert.Equal(2000, bpe.VocabSize);
        bpe.Save(dir.Path, modelMaxLength: 100_000);
        using var tokenizer = TextTokenizer.FromFolder(dir.Path, maxLength: 100_000);
        var samples = new List<string>
        {
            "The jury said it did find that many of Atlanta's registration and election laws are outmoded.",
            "  Leading spaces,\ttabs\nand new lines\n\n  and trailing   ",
            "Unicode: café, naïve, Zürich — “quoted” 3.14159 % $1,000,000!!!",
            "URGENT: click http://example.com/offer?id=42&x=y NOW",
            "",
        };
        samples.AddRange(TaskCatalog.Brown(Require(DatasetAssets.Brown)).TextTest.Texts.Take(20));
        samples.AddRange(TaskCatalog.Spam(Require(DatasetAssets.Spam)).TextTest.Texts.Take(20));
        foreach (var s in samples)
        {
            Assert.Equal(bpe.Encode(s), tokenizer.Encode(s));
            Assert.Equal(s, tokenizer.Decode(tokenizer.Encode(s)));
        }
        // Merges learnt from English compress it: well under one token per character on held-out passages.
        var held = TaskCatalog.Brown(Require(DatasetAssets.Brown)).TextTest.Texts.Take(20).ToList();
        double perChar = held.Sum(t => bpe.EncodeContent(t).Length) / (double)held.Sum(t => t.Length);
        Assert.InRange(perChar, 0.15, 0.45);
    }

    private static string Require(string asset)
    {
        try
        {
            return AssetCatalog.Ensure(asset);
        }
        catch (AssetUnavailableException e)
        {
            if (Checkpoints.RealModelsFixture.InCi) Assert.Fail($"{asset} cannot be fetched, and CI=true allows no skip: {e.Message}");
            Skip.If(true, $"{asset} cannot be fetched here: {e.Message}");
            throw;
        }
    }
}
