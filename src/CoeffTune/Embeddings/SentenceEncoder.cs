using CoeffTune.Checkpoints;
using CoeffTune.Models;
using CoeffTune.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Embeddings;

/// <summary>One embedded text: its vector, how many tokens it had, and whether it was cut.</summary>
public sealed record SentenceEmbedding(float[] Vector, int Tokens, bool Truncated);

/// <summary>
/// Sentence embeddings as sentence-transformers computes them for a model: the prompt prefixed to the text,
/// the text lower-cased when the model says so, tokenized and cut at the model's max_seq_length, encoded,
/// pooled by the model's pooling (the prompt's tokens left out when include_prompt is false), and normalised
/// when the model has a Normalize module.
/// </summary>
public sealed class SentenceEncoder : IDisposable
{
    private readonly PretrainedBert model;

    public SentenceTransformerConfig Config => model.Sentence;
    public TextTokenizer Tokenizer => model.Tokenizer;
    public int Dimensions => model.Model.Config.Dim;
    public int BatchSize { get; init; } = 32;

    public SentenceEncoder(PretrainedBert model)
    {
        this.model = model;
        model.Model.eval();
    }

    /// <summary>Loads a model by asset name or path (see <see cref="PretrainedModels.LoadBert"/>).</summary>
    public static SentenceEncoder Load(string nameOrPath, int? maxLength = null, Pooling? pooling = null, TextWriter? log = null) =>
        new(PretrainedModels.LoadBert(nameOrPath, classes: 1, maxLength: maxLength, log: log, pooling: pooling));

    /// <summary>The prompt text <paramref name="promptName"/> names, else <paramref name="promptText"/>, else the model's default prompt, else none.</summary>
    public string? ResolvePrompt(string? promptName, string? promptText)
    {
        if (promptName is not null && promptText is not null) throw new ArgumentException("give a prompt by name or by text, not both");
        if (promptName is not null) return Config.Prompt(promptName);
        return promptText ?? (Config.DefaultPromptName is { } d ? Config.Prompt(d) : null);
    }

    public IReadOnlyList<SentenceEmbedding> Embed(IReadOnlyList<string> texts, string? prompt = null, Action<int>? progress = null)
    {
        var inputs = texts.Select(t => Prepare(prompt is null ? t : prompt + t)).ToArray();
        // As sentence-transformers: the prompt's length is its token count less the closing special token.
        int promptLength = prompt is null || Config.IncludePrompt ? 0 : Tokenizer.Tokenize(Prepare(prompt)).FullLength - 1;
        var result = new List<SentenceEmbedding>(texts.Count);
        for (int start = 0; start < inputs.Length; start += BatchSize)
        {
            var chunk = inputs.Skip(start).Take(BatchSize).ToArray();
            var lengths = chunk.Select(t => Tokenizer.Tokenize(t).FullLength).ToArray();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            using var batch = Tokenizer.EncodeBatch(chunk, model.Model.embeddings.word_embeddings.weight!.device);
            var hidden = model.Model.Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds);
            var pooled = model.Model.Pool(hidden, batch.AttentionMask, promptLength);
            if (Config.Normalize) pooled = nn.functional.normalize(pooled, p: 2, dim: 1);
            var data = pooled.cpu().data<float>().ToArray();
            for (int i = 0; i < chunk.Length; i++)
                result.Add(new SentenceEmbedding(data.AsSpan(i * Dimensions, Dimensions).ToArray(), lengths[i], lengths[i] > Tokenizer.MaxLength));
            progress?.Invoke(result.Count);
        }
        return result;
    }

    private string Prepare(string text) => Config.DoLowerCase ? text.ToLowerInvariant() : text;

    public void Dispose()
    {
        model.Model.Dispose();
        model.Tokenizer.Dispose();
    }
}
