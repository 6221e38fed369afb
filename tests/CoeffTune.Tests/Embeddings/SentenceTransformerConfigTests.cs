using CoeffTune.Embeddings;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Embeddings;

public sealed class SentenceTransformerConfigTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    private const string Modules = """
        [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
         {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
         {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
        """;

    [Fact]
    public void A_folder_is_read_as_sentence_transformers_reads_it()
    {
        dir.File("m/modules.json", Modules);
        dir.File("m/1_Pooling/config.json", """
            {"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false,
             "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false, "pooling_mode_weightedmean_tokens": false,
             "pooling_mode_lasttoken": false, "include_prompt": false}
            """);
        dir.File("m/sentence_bert_config.json", """{"max_seq_length": 512, "do_lower_case": true}""");
        dir.File("m/config_sentence_transformers.json", """
            {"prompts": {"query": "Represent this sentence for searching relevant passages: ", "doc": ""}, "default_prompt_name": "doc"}
            """);
        var c = SentenceTransformerConfig.Read(Path.Combine(dir.Path, "m"))!;
        Assert.Equal(Pooling.Cls, c.Pooling);
        Assert.False(c.IncludePrompt);
        Assert.True(c.Normalize);
        Assert.Equal(512, c.MaxSeqLength);
        Assert.True(c.DoLowerCase);
        Assert.Equal("Represent this sentence for searching relevant passages: ", c.Prompt("query"));
        Assert.Equal("doc", c.DefaultPromptName);
        Assert.Contains("query, doc", Assert.Throws<ArgumentException>(() => c.Prompt("passage")).Message);
    }

    [Theory]
    [InlineData("""{"pooling_mode": "lasttoken"}""", Pooling.LastToken)]
    [InlineData("""{"pooling_mode": "mean_sqrt_len_tokens"}""", Pooling.MeanSqrtLen)]
    [InlineData("""{"pooling_mode_max_tokens": true, "pooling_mode_mean_tokens": false}""", Pooling.Max)]
    [InlineData("""{"pooling_mode_mean_tokens": true}""", Pooling.Mean)]
    public void Every_pooling_mode_is_read_without_a_normalize_module(string pooling, Pooling expected)
    {
        dir.File("p/modules.json", """[{"type": "sentence_transformers.models.Transformer", "path": ""}, {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}]""");
        dir.File("p/1_Pooling/config.json", pooling);
        var c = SentenceTransformerConfig.Read(Path.Combine(dir.Path, "p"))!;
        Assert.Equal(expected, c.Pooling);
        Assert.False(c.Normalize);
        Assert.True(c.IncludePrompt);
        Assert.Null(c.MaxSeqLength);
    }

    [Fact]
    public void A_folder_without_modules_json_is_not_a_sentence_transformers_folder()
    {
        Assert.Null(SentenceTransformerConfig.Read(dir.Path));
    }

    [Theory]
    [InlineData("1_Pooling/config.json", """{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}""", "exactly one pooling_mode")]
    [InlineData("1_Pooling/config.json", """{"pooling_mode": "weird"}""", "unknown pooling 'weird'")]
    [InlineData("sentence_bert_config.json", """{"max_seq_length": -3}""", "max_seq_length")]
    [InlineData("config_sentence_transformers.json", """{"prompts": {"q": "x"}, "default_prompt_name": "query"}""", "default_prompt_name")]
    [InlineData("config_sentence_transformers.json", """{"prompts": ["x"]}""", "prompts")]
    public void A_malformed_file_is_named_with_its_key(string file, string content, string expected)
    {
        dir.File("bad/modules.json", Modules);
        dir.File("bad/1_Pooling/config.json", """{"pooling_mode": "mean"}""");
        dir.File(Path.Combine("bad", file), content);
        var e = Assert.Throws<InvalidDataException>(() => SentenceTransformerConfig.Read(Path.Combine(dir.Path, "bad")));
        Assert.Contains(file.Replace('/', Path.DirectorySeparatorChar), e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Pooling_modes_match_hand_computed_values()
    {
        using var scope = NewDisposeScope();
        // Two sentences of three positions, two dims; the first has a padded third position.
        var hidden = tensor(new float[] { 1, 2, 3, -4, 100, 100, /**/ 0, 1, 2, 3, 4, -5 }, new long[] { 2, 3, 2 });
        var mask = tensor(new long[] { 1, 1, 0, 1, 1, 1 }, new long[] { 2, 3 });
        float[] Pool(Pooling p, int prompt = 0) => SentencePooling.Pool(hidden, mask, p, prompt).data<float>().ToArray();
        Assert.Equal(new float[] { 1, 2, 0, 1 }, Pool(Pooling.Cls));
        Assert.Equal(new float[] { 2, -1, 2, -1f / 3 }, Pool(Pooling.Mean), new FloatTolerance(1e-6f));
        Assert.Equal(new float[] { 4 / MathF.Sqrt(2), -2 / MathF.Sqrt(2), 6 / MathF.Sqrt(3), -1 / MathF.Sqrt(3) }, Pool(Pooling.MeanSqrtLen), new FloatTolerance(1e-6f));
        Assert.Equal(new float[] { 3, 2, 4, 3 }, Pool(Pooling.Max));             // the padded 100s never win
        Assert.Equal(new float[] { 3, -4, 4, -5 }, Pool(Pooling.LastToken));     // the last real token of each row
        // A one-token prompt ([CLS] counted) is left out of mean pooling: the first row keeps only position 1.
        Assert.Equal(new float[] { 3, -4, 3, -1 }, Pool(Pooling.Mean, prompt: 1), new FloatTolerance(1e-6f));
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(float f) => 0;
    }
}
