using CoeffTune.Text;

namespace CoeffTune.Tests.Text;

public sealed class BertTextTokenizerTests : IDisposable
{
    // Ids are line numbers: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, hello 5, world 6, the 7, cat 8, ##s 9.
    private readonly string vocab = Path.Combine(Path.GetTempPath(), $"coefftune-vocab-{Guid.NewGuid():N}.txt");

    public BertTextTokenizerTests() =>
        File.WriteAllLines(vocab, new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "cat", "##s" });

    public void Dispose() => File.Delete(vocab);

    [Fact]
    public void Batch_is_padded_to_the_longest_text_and_cut_to_max_length()
    {
        var tokenizer = new BertTextTokenizer(vocab, maxLength: 6);
        Assert.True(tokenizer.LowerCase);
        using var batch = tokenizer.EncodeBatch(new[] { "Hello WORLD", "the cats the cats the cats" });
        Assert.Equal(new long[] { 2, 6 }, batch.Inputs.shape);
        Assert.Equal(new long[] { 2, 5, 6, 3, 0, 0, 2, 7, 8, 9, 7, 3 }, batch.Inputs.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1 }, batch.AttentionMask!.data<long>().ToArray());
        Assert.Equal(new long[12], batch.TokenTypeIds!.data<long>().ToArray());
    }

    [Fact]
    public void Short_batch_is_only_as_long_as_its_longest_text()
    {
        var tokenizer = new BertTextTokenizer(vocab);
        using var batch = tokenizer.EncodeBatch(new[] { "cat", "hello" });
        Assert.Equal(new long[] { 2, 3 }, batch.Inputs.shape);
        Assert.Equal(128, tokenizer.MaxLength);
    }
}
