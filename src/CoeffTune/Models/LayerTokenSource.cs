using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// The token-insertion point of a <see cref="TransformerClassifier"/>: a module that gives, for each transformer layer,
/// tokens to run through that layer beside the sequence. The model inserts them right after the sequence's first
/// token (the class token, [CLS]), runs the layer, and drops their outputs, so every layer's output and the model's
/// features keep their usual length and order. Inserted tokens are never masked: a key padding mask gets ones for
/// them. Prompt methods (VPT) plug in here; the models know nothing of them.
/// </summary>
public abstract class LayerTokenSource : nn.Module
{
    protected LayerTokenSource(string name) : base(name) { }

    /// <summary>When false the model inserts nothing from this source.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Tokens (B, P, D) to insert before layer <paramref name="layer"/> runs on <paramref name="x"/> (B, N, D), on its
    /// device and dtype; null inserts none before that layer.
    /// </summary>
    public abstract Tensor? Tokens(int layer, Tensor x);
}
