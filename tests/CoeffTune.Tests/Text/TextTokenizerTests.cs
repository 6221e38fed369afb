using System.Text.Json.Nodes;
using CoeffTune.Text;

namespace CoeffTune.Tests.Text;

public sealed class TextTokenizerTests : IDisposable
{
    // Ids are line numbers: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, hello 5, world 6, the 7, cat 8, ##s 9, cafe 10, Hello 11.
    private static readonly string[] Vocab = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "cat", "##s", "cafe", "Hello" };
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    private string VocabFile(string folder = "")
    {
        var path = dir.File(Path.Combine(folder, "vocab.txt"));
        File.WriteAllLines(path, Vocab);
        return path;
    }

    [Fact]
    public void Batch_is_padded_to_the_longest_text_and_cut_to_max_length_keeping_sep()
    {
        using var tokenizer = TextTokenizer.FromWordPiece(VocabFile(), WordPieceSettings.UncasedBert, maxLength: 6);
        using var batch = tokenizer.EncodeBatch(new[] { "Hello WORLD", "the cats the cats the cats" });
        Assert.Equal(new long[] { 2, 6 }, batch.Inputs.shape);
        // "the cats the cats the cats" is [CLS] the cat ##s the cat ##s the cat ##s [SEP] (11 ids), cut to 6 with [SEP] kept.
        Assert.Equal(new long[] { 2, 5, 6, 3, 0, 0, 2, 7, 8, 9, 7, 3 }, batch.Inputs.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1 }, batch.AttentionMask!.data<long>().ToArray());
        Assert.Equal(new long[12], batch.TokenTypeIds!.data<long>().ToArray());
        var cut = tokenizer.Tokenize("the cats the cats the cats");
        Assert.True(cut.Truncated);
        Assert.Equal(11, cut.FullLength);
        Assert.Equal(1, tokenizer.CountTruncated(new[] { "Hello WORLD", "the cats the cats the cats", "cat" }));
    }

    [Fact]
    public void Uncased_settings_lower_case_and_strip_accents_whatever_the_vocabulary_holds()
    {
        // The vocabulary holds "Hello" (an upper-case letter); the settings, not the vocabulary, decide.
        using var uncased = TextTokenizer.FromWordPiece(VocabFile(), WordPieceSettings.UncasedBert);
        Assert.Equal(new[] { 2, 5, 6, 10, 3 }, uncased.Encode("HELLO World Café"));
        using var cased = TextTokenizer.FromWordPiece(VocabFile(), WordPieceSettings.UncasedBert with { LowerCase = false });
        Assert.Equal(new[] { 2, 11, 1, 1, 3 }, cased.Encode("Hello World Café"));
        // Special tokens written literally are special; their lower-case look-alikes are ordinary text.
        Assert.Equal(new[] { 2, 4, 1, 1, 1, 3 }, uncased.Encode("[MASK] [mask]"));
        Assert.Equal("##s", uncased.Token(9));
        Assert.Equal(0, uncased.PadId);
    }

    [Fact]
    public void A_folder_is_read_with_its_tokenizer_config()
    {
        VocabFile("cased");
        dir.File("cased/tokenizer_config.json", """{"do_lower_case": false, "model_max_length": 8, "pad_token": {"content": "[PAD]", "__type": "AddedToken"}}""");
        using var cased = TextTokenizer.FromFolder(Path.Combine(dir.Path, "cased"));
        Assert.Equal(8, cased.MaxLength);
        Assert.Equal(new[] { 2, 11, 5, 1, 3 }, cased.Encode("Hello hello World"));
        Assert.Throws<ArgumentOutOfRangeException>(() => TextTokenizer.FromFolder(Path.Combine(dir.Path, "cased"), maxLength: 9));
        // Without a config, transformers' BertTokenizer defaults apply: lower-case.
        VocabFile("plain");
        using var plain = TextTokenizer.FromFolder(Path.Combine(dir.Path, "plain"));
        Assert.Equal(new[] { 2, 5, 3 }, plain.Encode("Hello"));
    }

    [Fact]
    public void A_tokenizer_json_is_run_as_written()
    {
        // A cased definition with lowercase false: the folder's tokenizer.json wins over vocab.txt beside it.
        var definition = TokenizerFiles.WordPiece(VocabFile("json"), WordPieceSettings.UncasedBert with { LowerCase = false });
        definition["truncation"] = new JsonObject { ["max_length"] = 3, ["strategy"] = "LongestFirst", ["stride"] = 0, ["direction"] = "Right" };
        dir.File("json/tokenizer.json", definition.ToJsonString());
        using var tokenizer = TextTokenizer.FromFolder(Path.Combine(dir.Path, "json"));
        Assert.Equal("json/tokenizer.json", Path.GetRelativePath(dir.Path, tokenizer.Source));
        // The file's own truncation is ignored: this class cuts, and says so.
        Assert.Equal(new[] { 2, 11, 5, 7, 3 }, tokenizer.Encode("Hello hello the"));
    }

    [Fact]
    public void Byte_level_bpe_from_vocab_json_and_merges_wraps_roberta_style()
    {
        // A tiny byte-level BPE: "Ġ" is the byte-level form of a space.
        dir.File("bpe/vocab.json", """{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "h": 4, "i": 5, "Ġ": 6, "hi": 7, "Ġhi": 8}""");
        dir.File("bpe/merges.txt", "#version: 0.2\nh i\nĠ hi\n");
        dir.File("bpe/tokenizer_config.json", """{"tokenizer_class": "BartTokenizer", "model_max_length": 1024}""");
        using var bart = TextTokenizer.FromFolder(Path.Combine(dir.Path, "bpe"));
        Assert.Equal(new[] { 0, 7, 8, 8, 2 }, bart.Encode("hi hi hi"));
        Assert.Equal(1, bart.PadId);
        Assert.Equal("Ġhi", bart.Token(8));
        dir.File("gpt/vocab.json", """{"h": 0, "i": 1, "Ġ": 2, "hi": 3, "Ġhi": 4, "<|endoftext|>": 5}""");
        dir.File("gpt/merges.txt", "#version: 0.2\nh i\nĠ hi\n");
        using var gpt = TextTokenizer.FromFolder(Path.Combine(dir.Path, "gpt"));
        Assert.Equal(new[] { 3, 4 }, gpt.Encode("hi hi"));
    }

    [Fact]
    public void Missing_or_corrupt_files_are_named()
    {
        var empty = Directory.CreateDirectory(Path.Combine(dir.Path, "empty")).FullName;
        var e1 = Assert.Throws<FileNotFoundException>(() => TextTokenizer.FromFolder(empty));
        Assert.Contains("tokenizer.json", e1.Message);
        Assert.Contains(empty, e1.Message);
        dir.File("broken/tokenizer.json", "{\"version\": ");
        var e2 = Assert.Throws<InvalidDataException>(() => TextTokenizer.FromFolder(Path.Combine(dir.Path, "broken")));
        Assert.Contains(Path.Combine(dir.Path, "broken", "tokenizer.json"), e2.Message);
        VocabFile("badconfig");
        dir.File("badconfig/tokenizer_config.json", """{"do_lower_case": "yes"}""");
        var e3 = Assert.Throws<InvalidDataException>(() => TextTokenizer.FromFolder(Path.Combine(dir.Path, "badconfig")));
        Assert.Contains("tokenizer_config.json", e3.Message);
        Assert.Contains("do_lower_case", e3.Message);
        dir.File("onlyvocab/vocab.json", "{}");
        var e4 = Assert.Throws<FileNotFoundException>(() => TextTokenizer.FromFolder(Path.Combine(dir.Path, "onlyvocab")));
        Assert.Contains("merges.txt", e4.Message);
        dir.File("nocls/vocab.txt", "[PAD]\n[UNK]\nhello\n");
        var e5 = Assert.Throws<InvalidDataException>(() => TextTokenizer.FromFolder(Path.Combine(dir.Path, "nocls")));
        Assert.Contains("[CLS]", e5.Message);
    }
}
